"""Small user files (link profiles, sweeps): a JSON or YAML mapping, read with clear errors."""

import json
from pathlib import Path

from sc2deploy.errors import UsageError


def read_mapping(path: Path, what: str) -> dict:
    """The mapping in a .json file, or in YAML for any other suffix; ``what`` names the file."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what} not found: {path}")
    text = path.read_text()
    kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
    try:
        if kind == "JSON":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except ImportError:
        raise UsageError("YAML files need PyYAML: pip install pyyaml (or use JSON)") from None
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError (not a ValueError)
        raise UsageError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a {what} must be a mapping (key: value), got "
                         f"{type(data).__name__}")
    return data
