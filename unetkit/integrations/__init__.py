"""Where unetkit meets other tools: the napari plugin (``unetkit.integrations.napari``)."""
