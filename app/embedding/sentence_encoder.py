"""A sentence-transformers text encoder trained into CLIP's image space, such as
``sentence-transformers/clip-ViT-B-32-multilingual-v1`` (50+ languages, Spanish among
them), loaded without the sentence-transformers framework.

Pipeline (what its ``modules.json`` lists): a transformer (``AutoModel``, here
DistilBERT) -> the mean of its token states over the text's tokens (padding left out)
-> a linear layer (``2_Dense``) into CLIP's width, with its activation.
"""

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils.hub import cached_file

from app.errors import TextModelLoadError

MODULES_FILE = "modules.json"
SETTINGS_FILE = "sentence_bert_config.json"
ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "torch.nn.modules.linear.Identity": torch.nn.Identity,
    "torch.nn.modules.activation.Tanh": torch.nn.Tanh,
}


def model_file(name: str, path: str, local_files_only: bool) -> Path | None:
    """One file of the model (a folder or a hub id), or ``None`` when it has none."""
    found = cached_file(
        name,
        path,
        local_files_only=local_files_only,
        _raise_exceptions_for_missing_entries=False,
    )
    return Path(found) if found else None


def _json(name: str, path: str, local_files_only: bool) -> Any:
    found = model_file(name, path, local_files_only)
    if found is None:
        raise TextModelLoadError(f"TEXT_MODEL_NAME={name!r} has no {path}.")
    return json.loads(found.read_text())


def is_sentence_encoder(name: str, local_files_only: bool) -> bool:
    """Whether ``name`` is a sentence-transformers model (it has ``modules.json``)."""
    return model_file(name, MODULES_FILE, local_files_only) is not None


class MeanPooledEncoder(torch.nn.Module):
    """Token ids (padded with ``pad_token``) to the model's sentence vectors."""

    def __init__(
        self,
        encoder: torch.nn.Module,
        dense: torch.nn.Linear,
        activation: torch.nn.Module,
        pad_token: int,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.dense = dense
        self.activation = activation
        self.pad_token = pad_token
        self.dimension = dense.out_features

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != self.pad_token).long()
        states = self.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        embeds: torch.Tensor = self.activation(self.dense(pooled))
        return embeds


def _dense(name: str, folder: str, local_files_only: bool) -> torch.nn.Linear:
    config = _json(name, f"{folder}/config.json", local_files_only)
    linear = torch.nn.Linear(config["in_features"], config["out_features"], config["bias"])
    weights = model_file(name, f"{folder}/model.safetensors", local_files_only)
    if weights is not None:
        state = load_file(weights)
    else:
        legacy = model_file(name, f"{folder}/pytorch_model.bin", local_files_only)
        if legacy is None:
            raise TextModelLoadError(f"TEXT_MODEL_NAME={name!r} has no weights in {folder}.")
        state = torch.load(legacy, map_location="cpu", weights_only=True)
    linear.load_state_dict({key.removeprefix("linear."): value for key, value in state.items()})
    return linear


def load_sentence_encoder(
    name: str, local_files_only: bool
) -> tuple[MeanPooledEncoder, PreTrainedTokenizerBase, int]:
    """The encoder, its tokenizer and the most tokens it reads."""
    modules = _json(name, MODULES_FILE, local_files_only)
    paths = {module["type"].rsplit(".", 1)[-1]: module["path"] for module in modules}
    if sorted(paths) != ["Dense", "Pooling", "Transformer"]:
        raise TextModelLoadError(
            f"TEXT_MODEL_NAME={name!r} is a sentence-transformers model of {sorted(paths)}; "
            "only Transformer, mean Pooling and Dense are supported."
        )
    pooling = _json(name, f"{paths['Pooling']}/config.json", local_files_only)
    if not pooling.get("pooling_mode_mean_tokens"):
        raise TextModelLoadError(f"TEXT_MODEL_NAME={name!r} does not pool by the tokens' mean.")
    dense_config = _json(name, f"{paths['Dense']}/config.json", local_files_only)
    activation = ACTIVATIONS.get(dense_config.get("activation_function", ""))
    if activation is None:
        raise TextModelLoadError(
            f"TEXT_MODEL_NAME={name!r}: unsupported activation "
            f"{dense_config.get('activation_function')!r}."
        )
    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_files_only)
    pad = tokenizer.pad_token_id
    if not isinstance(pad, int):
        raise TextModelLoadError(f"TEXT_MODEL_NAME={name!r}: its tokenizer has no padding token.")
    encoder = AutoModel.from_pretrained(name, local_files_only=local_files_only)
    dense = _dense(name, paths["Dense"], local_files_only)
    model = MeanPooledEncoder(encoder, dense, activation(), pad).eval()
    return model, tokenizer, max_tokens(name, tokenizer, local_files_only)


def max_tokens(name: str, tokenizer: PreTrainedTokenizerBase, local_files_only: bool = True) -> int:
    """The most tokens the encoder reads: its settings' max_seq_length, else the
    tokenizer's limit."""
    settings = model_file(name, SETTINGS_FILE, local_files_only)
    if settings is None:
        return int(tokenizer.model_max_length)
    return int(json.loads(settings.read_text())["max_seq_length"])
