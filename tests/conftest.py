"""Test configuration shared by every test module.

Eight simulated CPU devices are requested before JAX is imported anywhere, so
that the sharding tests can build meshes; single-device tests are unaffected
(they run on device 0).
"""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
if "--xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"

import pytest  # noqa: E402

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
_DEFAULT_DATA_DIR = _REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> pathlib.Path:
  """The real datasets (``../shared/data`` or ``$OPTAX_AR_DATA``).

  Tests that request this fixture are skipped when the folder is absent.
  """
  path = pathlib.Path(os.environ.get("OPTAX_AR_DATA", _DEFAULT_DATA_DIR))
  if not path.is_dir():
    pytest.skip(f"real data not found at {path} (set OPTAX_AR_DATA)")
  return path
