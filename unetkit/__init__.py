"""unetkit: U-Net biomedical image segmentation."""

__version__ = "0.1.0"
