"""composer: compose multi-source SFT and DPO fine-tuning mixtures from one YAML manifest."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("composer-mix")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from composer.build import BuildResult, build
from composer.errors import UserError
from composer.manifest import Manifest, load_manifest

__all__ = ["BuildResult", "Manifest", "UserError", "__version__", "build", "load_manifest"]
