"""Processing algorithms of the provider: declared outputs, and a real ``processing.run`` of cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from qgis.core import (
    QgsApplication,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingOutputRasterLayer,
    QgsProject,
    QgsRasterLayer,
)


def test_algorithms_declare_named_outputs(loaded_plugin):
    provider = QgsApplication.processingRegistry().providerById("terraprobe")
    ids = sorted(alg.id() for alg in provider.algorithms())
    assert ids == ["terraprobe:change", "terraprobe:classify", "terraprobe:cluster", "terraprobe:embed",
                   "terraprobe:segment", "terraprobe:similar", "terraprobe:vectorise"]
    embed = QgsApplication.processingRegistry().algorithmById("terraprobe:embed")
    outputs = {o.name(): o for o in embed.outputDefinitions()}
    assert set(outputs) == {"OUTPUT", "PREVIEW"}
    assert all(isinstance(o, QgsProcessingOutputRasterLayer) for o in outputs.values())
    cluster = QgsApplication.processingRegistry().algorithmById("terraprobe:cluster")
    names = {p.name() for p in cluster.parameterDefinitions()}
    assert names >= {"OPTICAL", "EMBEDDINGS", "K", "MODEL", "EXTENT"}
    classify = QgsApplication.processingRegistry().algorithmById("terraprobe:classify")
    assert classify.parameterDefinition("CLASS_FIELD").parentLayerParameterName() == "SAMPLES"


def test_processing_parameters_are_the_declared_options(loaded_plugin):
    """Every option the plugin offers (``PluginField`` in backend/contract/commands.py) is a parameter of the
    algorithms of the actions that take it, with the declared label, range, default or choices."""
    from backend.contract.requests import DEFAULTS
    from plugin.requests_builder import offered

    checked = 0
    for name, (option, actions) in offered().items():
        for action in actions:
            parameter = QgsApplication.processingRegistry().algorithmById(f"terraprobe:{action}") \
                .parameterDefinition(name.upper())
            assert parameter is not None, (action, name)
            if option.choices:
                assert len(parameter.options()) == len(option.choices), (action, name)
            elif option.type is int:
                assert parameter.description() == option.plugin.label, (action, name)
                assert (parameter.minimum(), parameter.maximum()) == (option.plugin.minimum,
                                                                      option.plugin.maximum), (action, name)
                if name in DEFAULTS:
                    assert parameter.defaultValue() == DEFAULTS[name], (action, name)
            checked += 1
    assert checked >= 20


def test_processing_embed_then_cluster_chain_writes_a_styled_class_map(loaded_plugin, processing_ready,
                                                                      tiny_model, shared_data, tmp_path):
    import processing

    embedded = processing.run("terraprobe:embed", {
        "OPTICAL": str(shared_data / "rstoolbox-sen2" / "sen2.tif"),
        "MODEL": str(tiny_model),
        "OUTPUT": str(tmp_path / "embeddings.tif"),
        "PREVIEW": str(tmp_path / "preview.tif"),
    })
    assert Path(embedded["OUTPUT"]).is_file() and Path(embedded["PREVIEW"]).is_file()
    preview = QgsRasterLayer(embedded["PREVIEW"], "preview", "gdal")
    assert preview.bandCount() == 3

    out = tmp_path / "clusters.tif"
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = QgsProcessingFeedback()
    progress: list[float] = []
    feedback.progressChanged.connect(progress.append)
    # Chained as in the model builder: cluster reads embed's output, the encoder does not run again.
    result = processing.run("terraprobe:cluster", {
        "EMBEDDINGS": embedded["OUTPUT"],
        "K": 3,
        "OUTPUT": QgsProcessingOutputLayerDefinition(str(out), QgsProject.instance()),
    }, context=context, feedback=feedback)
    assert Path(result["OUTPUT"]) == out and out.is_file()
    assert out.with_suffix(".qml").is_file()
    assert progress and max(progress) == pytest.approx(100.0)
    layer = QgsRasterLayer(str(out), "clusters", "gdal")
    assert layer.isValid()
    assert layer.crs().authid() == "EPSG:4326"
    assert isinstance(layer.renderer(), QgsPalettedRasterRenderer)  # the .qml sidecar is the default style
    assert len(layer.renderer().classes()) == 3
    # As in the toolbox: the output is to be loaded, and its post-processor styles the loaded layer.
    assert context.willLoadLayerOnCompletion(str(out))
    post_processor = context.layerToLoadOnCompletionDetails(str(out)).postProcessor()
    assert post_processor is not None
    loaded = QgsRasterLayer(str(out), "loaded", "gdal")
    post_processor.postProcessLayer(loaded, context, feedback)
    assert isinstance(loaded.renderer(), QgsPalettedRasterRenderer)
    assert [c.value for c in loaded.renderer().classes()] == [1, 2, 3]
