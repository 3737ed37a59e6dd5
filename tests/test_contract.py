"""The plugin/backend contract: pure, the only bridge, and every plugin request parses in the backend.

Issue 12: ``backend.contract`` imports nothing heavy; the plugin imports nothing else from
``backend/``; the backend never imports qgis; every request the plugin can build round-trips through
the backend's own argparse parser (which imports no torch) and back to an equal request.
"""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend.contract import outputs as contract_outputs
from backend.contract import requests as contract_requests
from backend.contract.bands import canonical_band_name, match_bands
from backend.contract.model_files import FORMAT_VERSION, ModelFileError, read_model_json
from backend.contract.outputs import RASTER_OUTPUTS, STYLE_KEYS, default_output

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "numpy", "rasterio", "qgis")
CONTRACT_MODULES = sorted(p.stem for p in (REPO_ROOT / "backend" / "contract").glob("*.py"))


@pytest.mark.parametrize("module", CONTRACT_MODULES)
def test_contract_module_imports_nothing_heavy(module: str):
    name = "backend.contract" if module == "__init__" else f"backend.contract.{module}"
    code = (f"import sys, json, importlib; importlib.import_module({name!r}); "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                               timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == [], f"{name} loads {completed.stdout.strip()}"


def _imports(path: Path, package: str) -> list[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved from ``package``)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".")
                module = ".".join([*parts[:len(parts) - node.level + 1], module]).strip(".")
            for alias in node.names:  # ``from package import submodule`` imports the submodule
                submodule = f"{module}.{alias.name}"
                is_module = any((REPO_ROOT / submodule.replace(".", "/")).with_suffix(suffix).exists()
                                for suffix in (".py", ""))
                names.append(submodule if is_module else module)
    return names


def _package_of(path: Path) -> str:
    relative = path.relative_to(REPO_ROOT).with_suffix("")
    parts = list(relative.parts)
    return ".".join(parts if parts[-1] == "__init__" else parts[:-1]) if len(parts) > 1 else ""


def test_plugin_imports_nothing_from_the_backend_but_the_contract():
    found = []
    for path in sorted((REPO_ROOT / "plugin").rglob("*.py")):
        for name in _imports(path, _package_of(path)):
            if name.split(".")[0] == "backend" and not (name + ".").startswith("backend.contract."):
                found.append(f"{path.relative_to(REPO_ROOT)}: {name}")
    assert found == []
    uses = [p.name for p in (REPO_ROOT / "plugin").rglob("*.py")
            if any(n.startswith("backend.contract") for n in _imports(p, _package_of(p)))]
    assert "contract.py" in uses  # the scan resolves the plugin's relative imports


def test_backend_never_imports_qgis():
    found = [f"{path.relative_to(REPO_ROOT)}: {name}"
             for path in sorted((REPO_ROOT / "backend").rglob("*.py"))
             for name in _imports(path, _package_of(path)) if name.split(".")[0] in ("qgis", "PyQt5")]
    assert found == []


def test_one_band_canonicaliser_for_both_halves():
    from backend.io import bands as backend_bands
    from plugin import bands as plugin_bands

    assert backend_bands.canonical_band_name is canonical_band_name
    assert plugin_bands.canonical_band_name is canonical_band_name
    for spelling in ("B_02", "b2", "B02", " b 02 ", "Band 02: B02", "B2"):
        assert canonical_band_name(spelling) == "B02", spelling
    assert canonical_band_name("Band 09: B8A") == canonical_band_name("B08A") == "B8A"
    assert canonical_band_name("vv") == "VV" and canonical_band_name("SR_B5") == "SR_B5"
    names = [f"B_{i:02d}" for i in range(1, 13)]
    assert None not in match_bands(["B02", "B03", "B04"], names)


def test_output_names_and_keys_come_from_the_contract():
    from plugin import layers

    assert default_output("/x/emb.tif", "preview") == Path("/x/emb_pca.tif")
    assert default_output("/x/l.tif", "confidence") == Path("/x/l_confidence.tif")
    assert default_output("/x/s.tif", "head") == Path("/x/s_head.safetensors")
    assert layers.RASTER_OUTPUTS is RASTER_OUTPUTS and layers.STYLE_KEYS is STYLE_KEYS
    assert STYLE_KEYS["confidence"] == "confidence_style" and RASTER_OUTPUTS["preview"] == "rgb"


def test_a_model_file_from_a_newer_terraprobe_is_refused_clearly(tmp_path: Path):
    from backend.errors import UserError
    from backend.models.config import ModelConfig
    from plugin.models import model_problem, read_model_info

    config = ModelConfig(dim=32, heads=4, name="future")
    data = config.to_dict()
    data["format_version"] = FORMAT_VERSION + 1
    path = tmp_path / "future.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="made by a newer Terraprobe"):
        read_model_json(path)
    with pytest.raises(UserError, match="made by a newer Terraprobe"):
        ModelConfig.load_json(path)
    assert read_model_info(path) is None and "newer Terraprobe" in model_problem(path)
    data["format_version"] = FORMAT_VERSION
    path.write_text(json.dumps(data))
    assert read_model_json(path)["name"] == "future" and read_model_info(path).dim == 32


# -- requests ---------------------------------------------------------------------------------------
def parse_with_backend(argv: list[str]):
    """The backend's own parser on ``argv``; parsing must not import torch."""
    from backend.cli import build_parser

    before = set(sys.modules)
    parsed = build_parser().parse_args(argv)
    assert not {name for name in set(sys.modules) - before if name.split(".")[0] == "torch"}
    return parsed


def _plugin_requests() -> list:
    """Every kind of request the plugin builds: each action, with/without radar, bounds, units, sensor,
    advanced options, given embeddings; plus info and import-weights."""
    from plugin.requests_builder import (
        InputFiles,
        RunChoices,
        build_change_request,
        build_request,
        build_vectorise_request,
        import_weights_request,
        info_request,
    )

    action_options = {
        "embed": [{}, {"preview_out": "/o/prev.tif"}],
        "cluster": [{"k": 3}, {"k": 8, "seed": 4}, {"method": "hdbscan", "min_cluster_size": 25}],
        "classify": [{"samples": "/s.gpkg", "class_field": "class"},
                     {"samples": "/s.gpkg", "class_field": "kind", "confidence_out": "/o/c.tif"},
                     {"samples": "/s.gpkg", "classifier": "random-forest", "band_stats": True,
                      "probabilities_out": "/o/p.tif", "normalise": "l2", "distance": "euclidean"},
                     {"samples": "/s.gpkg", "classifier": "gradient-boosting"}],
        "segment": [{"samples": "/s.gpkg", "class_field": "class", "head_out": "/o/h.safetensors"},
                    {"label_raster": "/labels.tif"}, {"head": "/h.safetensors"}],
        "similar": [{"point": (-0.7455, 38.1175), "point_crs": "EPSG:4326"}, {"samples": "/q.gpkg"},
                    {"samples": "/q.gpkg", "distance": "euclidean", "normalise": "none"}],
    }
    inputs = [InputFiles(optical="/d/s2 scene.tif"),
              InputFiles(optical="/d/s2.tif", sar="/d/s1.tif", bounds=(-1.5, 2.0, 3.25, 4.0),
                         bounds_crs="EPSG:32630"),
              InputFiles(embeddings="/d/emb.tif")]
    choices = [RunChoices(),
               RunChoices(model="/m/model.safetensors", window=64, device="cpu", cache_dir="/c",
                          optical_units="reflectance", sar_units="linear", sensor="landsat-oli",
                          advanced={"overlap": 16, "batch_size": 2, "neighbors": 5, "steps": 40}),
               RunChoices(advanced={"normalise": "l2", "distance": "euclidean"})]
    bands = [(None, None), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13], [2, 1])]
    built = []
    for action, options in action_options.items():
        for option, files, choice, (optical_bands, sar_bands) in itertools.product(options, inputs, choices,
                                                                                  bands):
            if action == "embed" and files.embeddings:
                continue  # embed reads pixels
            built.append(build_request(action, f"/o/{action}.tif", files, choice, optical_bands, sar_bands,
                                       **option))
    dates = [(InputFiles(embeddings="/d/aef 2018.tif"), InputFiles(embeddings="/d/aef_2023.tif")),
             (InputFiles(optical="/d/s2_june.tif", bounds=(0.0, 1.0, 2.0, 3.0), bounds_crs="EPSG:4326"),
              InputFiles(optical="/d/s2_aug.tif")),
             (InputFiles(sar="/d/s1_before.tif"), InputFiles(sar="/d/s1_after.tif"))]
    change_options = [{}, {"threshold": "otsu3", "change_clusters": 4, "seed": 2, "types_out": "/o/t.tif"},
                      {"threshold": 0.25, "distance": "euclidean", "normalise": "l2", "mask_out": "/o/m.tif"}]
    for (before, after), choice, option in itertools.product(dates, choices, change_options):
        built.append(build_change_request("/o/change.tif", before, after, choice, **option))
    built += [build_vectorise_request("/o/labels.tif", "/o/polygons.gpkg"),
              build_vectorise_request("/o/c.tif", "/o/c.gpkg", min_area=500, simplify=2.5,
                                      confidence="/o/c_confidence.tif"),
              build_vectorise_request("/o/mask.tif", "/o/changed.gpkg", only="change"),
              build_vectorise_request("/o/labels.tif", "/o/two.gpkg", only=" 1, water ,")]
    return [*built, info_request("/m/croma.pt"), import_weights_request("/dl/CROMA_base.pt", "/models")]


def test_every_plugin_request_round_trips_through_the_backend_parser():
    requests = _plugin_requests()
    assert len(requests) > 100
    for request in requests:
        argv = request.to_argv()
        parsed = parse_with_backend(argv)
        assert parsed.command == request.action, argv
        assert contract_requests.parse_request(argv) == request, argv
        if request.action in contract_requests.ACTIONS:
            assert parsed.out == request.out
            for option in request.options():  # every value reaches the backend's option of that name
                value = getattr(request, option.dest)
                if value is not None and value != "auto":
                    got = getattr(parsed, option.dest)
                    expected = (",".join(map(str, value)) if option.bands
                                else list(value) if option.nargs in (2, 4) else value)
                    if option.dest == "threshold" and got not in contract_requests.THRESHOLD_RULES:
                        got, expected = float(got), float(expected)
                    assert got == expected, (option.flag, argv)


def test_advanced_field_choices_and_only_reach_the_argv():
    """The *Advanced* Vectors / Distance choices reach classify, similar and change (a field date too), and
    vectorise's ``only`` becomes ``--only`` (the change mask's changed class: the backend's name)."""
    from backend.downstream.change import MASK_CLASSES
    from plugin.requests_builder import (
        InputFiles,
        RunChoices,
        build_change_request,
        build_request,
        build_vectorise_request,
    )

    choices = RunChoices(advanced={"normalise": "l2", "distance": "euclidean", "overlap": 16})
    field = InputFiles(embeddings="/d/aef.tif")
    for action, options in (("classify", {"samples": "/s.gpkg"}), ("similar", {"point": (1.0, 2.0)})):
        argv = build_request(action, "/o/x.tif", field, choices, **options).to_argv()
        assert argv[argv.index("--normalise") + 1] == "l2"
        assert argv[argv.index("--distance") + 1] == "euclidean"
        assert "--overlap" not in argv
    for action in ("cluster", "segment"):  # they take neither
        request = build_request(action, "/o/x.tif", field, choices, k=3) if action == "cluster" else \
            build_request(action, "/o/x.tif", field, choices, samples="/s.gpkg")
        assert request.normalise is None and request.distance is None
    change = build_change_request("/o/c.tif", field, InputFiles(embeddings="/d/b.tif"), choices)
    assert (change.normalise, change.distance, change.overlap) == ("l2", "euclidean", None)
    defaults = RunChoices(advanced={"normalise": "auto", "distance": "cosine"})
    assert "--distance" not in build_request("similar", "/o/x.tif", field, defaults, point=(1, 2)).to_argv()
    assert MASK_CLASSES[2] == contract_outputs.CHANGED_CLASS
    argv = build_vectorise_request("/o/m.tif", "/o/m.gpkg", only=contract_outputs.CHANGED_CLASS).to_argv()
    assert argv[-2:] == ["--only", "change"] and parse_with_backend(argv).only == "change"
    assert build_vectorise_request("/o/m.tif", "/o/m.gpkg", only=" , ").only is None


def test_contract_defaults_are_the_backend_parsers():
    argv = {"cluster": ["cluster", "--optical", "a.tif", "--out", "o.tif"],
            "classify": ["classify", "--optical", "a.tif", "--samples", "s.gpkg", "--out", "o.tif"],
            "segment": ["segment", "--optical", "a.tif", "--samples", "s.gpkg", "--out", "o.tif"],
            "change": ["change", "--before-optical", "a.tif", "--after-optical", "b.tif", "--out", "o.tif"]}
    parsed = {action: parse_with_backend(args) for action, args in argv.items()}
    from backend.inference.embed import default_tiling
    from backend.models.config import ModelConfig

    # --window/--overlap are the model's when not given: the contract's are those of a CROMA model.
    assert all(p.window is None and p.overlap is None for p in parsed.values())
    assert default_tiling(ModelConfig()) == (contract_requests.DEFAULTS["window"],
                                             contract_requests.DEFAULTS["overlap"])
    from plugin.requests_builder import OFFERED

    for name, value in contract_requests.DEFAULTS.items():
        if name in ("window", "overlap"):
            continue
        owners = [parsed[action] for action in OFFERED[name][1] if action in parsed]  # commands offering it
        assert owners, name
        assert {getattr(p, name) for p in owners} == {value}, name
    assert parsed["segment"].steps == contract_requests.DEFAULTS["steps"]


def test_requests_refuse_what_the_backend_would():
    Request = contract_requests.Request
    bad_choices = ({"optical_units": "kelvin"}, {"sar_units": "db2"}, {"sensor": "landsat-99"},
                   {"device": "tpu"})
    for bad in bad_choices:
        with pytest.raises(ValueError, match="choose one of"):
            Request("embed", optical="a.tif", out="e.tif", **bad)
    with pytest.raises(ValueError, match="takes no k"):
        Request("embed", optical="a.tif", out="e.tif", k=3)
    with pytest.raises(ValueError, match="unknown action"):
        Request("pretrain", out="x")
    with pytest.raises(ValueError):
        Request.from_argv(["embed", "--optical", "a.tif", "--no-such-option", "--out", "e.tif"])
    # Units without the raster they describe mean nothing: reset, so they never reach the argv.
    assert "--sar-units" not in Request("embed", optical="a.tif", out="e.tif", sar_units="linear").to_argv()
    assert "--optical-units" not in Request("cluster", embeddings="e.tif", out="c.tif",
                                            optical_units="dn").to_argv()
    for action, bad in (("cluster", {"method": "dbscan"}), ("classify", {"classifier": "svm"}),
                        ("similar", {"distance": "manhattan"}), ("change", {"normalise": "z"})):
        with pytest.raises(ValueError, match="choose one of"):
            Request(action, embeddings="e.tif" if action != "change" else None, out="x.tif", **bad)
    with pytest.raises(ValueError, match="must be a number"):
        Request("change", before_embeddings="a.tif", after_embeddings="b.tif", out="c.tif", threshold="high")
    with pytest.raises(ValueError, match="takes no window"):
        Request("vectorise", raster="c.tif", out="c.gpkg", window=64)
    with pytest.raises(ValueError, match="takes no embeddings"):
        Request("change", embeddings="e.tif", out="c.tif")
