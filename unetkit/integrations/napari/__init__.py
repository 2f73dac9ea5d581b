"""napari plugin (npe2 manifest ``napari.yaml``): a segment widget and a train widget.

Installed with ``pip install 'unetkit[napari]'``; napari finds it through the ``napari.manifest`` entry
point. The widgets (``widgets.py``) are thin magicgui functions over :func:`unetkit.inference.segment.segment_array`
and :func:`unetkit.training.loop.fit`, run in napari's thread workers so the viewer stays responsive.
"""
