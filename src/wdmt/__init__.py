"""wdmt: unsupervised lesion detection in retinal fundus photographs (WDMT-Net and its baselines)."""

from wdmt.errors import WdmtError

__version__ = "0.1.0"
__all__ = ["WdmtError", "__version__"]
