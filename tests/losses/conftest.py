from pathlib import Path

import pytest
from safetensors.torch import load_file


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def stage2_inputs():
    return load_file(FIXTURES / "stage2_model" / "inputs.safetensors")


@pytest.fixture(scope="session")
def stage2_outputs():
    return load_file(FIXTURES / "stage2_model" / "outputs.safetensors")


@pytest.fixture(scope="session")
def stage2_vocab_file():
    return FIXTURES / "stage2_model" / "vocab.txt"


@pytest.fixture(scope="session")
def audiovisual_outputs():
    return load_file(FIXTURES / "stage2_audiovisual" / "outputs.safetensors")


@pytest.fixture(scope="session")
def audiovisual_state_dict():
    return load_file(FIXTURES / "stage2_audiovisual" / "state_dict.safetensors")
