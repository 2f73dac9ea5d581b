"""napari plugin (npe2 manifest ``napari.yaml``): a segment widget and a train widget.

Installed with ``pip install 'unetkit[napari]'``; napari finds it through the ``napari.manifest`` entry
point. The widgets (``widgets.py``) are thin magicgui functions over :mod:`unetkit.inference.segment` (a viewer's array,
one image or a stack of planes, segmented with a checkpoint) and :func:`unetkit.train`, run in napari's thread
workers so the viewer stays responsive.
"""
