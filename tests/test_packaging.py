import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "internvideo2": "modeling_internvideo2",
    "internvideo2.processing": "processing",
    "internvideo2.trainers": "trainers",
    "internvideo2.eval": "eval",
}


def test_setup_cfg_lists_every_package_folder():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    mapping = dict(line.split(" = ") for line in config["options"]["package_dir"].strip().splitlines())
    assert mapping == FOLDERS
    found = set()
    for package, folder in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert found == listed, f"setup.cfg packages differ from the folders: {sorted(found ^ listed)}"
