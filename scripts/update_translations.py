"""Refresh the plugin's translation files from its source, then compile them.

    .venv/bin/python scripts/update_translations.py

Reads every translatable string of ``plugin/`` (``self.tr("…")`` in a class: context = the class
name; a module's ``_tr("…")``: the context its ``_tr`` passes to ``QCoreApplication.translate``;
``tr("…")`` from :mod:`plugin.i18n`: ``Terraprobe`` or its ``context=``; literal
``QCoreApplication.translate("Ctx", "…")`` and ``QT_TRANSLATE_NOOP("Ctx", "…")``), merges them into
every ``i18n/terraprobe_<lang>.ts`` (translations kept, strings no longer in the source marked
obsolete, new ones unfinished) and runs ``lrelease`` (Debian: ``qttools5-dev-tools``) to write the
``.qm`` files the plugin loads.
pylupdate5 is not used: it does not see the modules' ``_tr`` helpers.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugin"
I18N = ROOT / "i18n"
DEFAULT_CONTEXT = "Terraprobe"  # plugin.i18n.CONTEXT

Messages = dict[str, dict[str, list[str]]]  # context -> source text -> locations


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _translate_context(function: ast.FunctionDef) -> str | None:
    """The literal context of ``QCoreApplication.translate("Ctx", text)`` inside a ``_tr`` helper."""
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "translate":
            return _literal(node.args[0]) if node.args else None
    return None


def _helper_contexts(tree: ast.Module) -> str | None:
    return next((_translate_context(node) for node in tree.body
                 if isinstance(node, ast.FunctionDef) and node.name == "_tr"), None)


def _module_contexts() -> dict[Path, str]:
    """Each module's ``_tr`` context: its own helper, or the one it imports from a sibling."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in PLUGIN.rglob("*.py")}
    contexts = {path: context for path, tree in trees.items() if (context := _helper_contexts(tree))}
    for path, tree in trees.items():
        for node in tree.body:
            if (isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
                    and any(alias.name == "_tr" for alias in node.names)):
                source = path.parent / f"{node.module.replace('.', '/')}.py"
                if source in contexts:
                    contexts[path] = contexts[source]
    return contexts


class _Collector(ast.NodeVisitor):
    def __init__(self, path: Path, helper_context: str | None, messages: Messages) -> None:
        self.path = path
        self.helper_context = helper_context
        self.messages = messages
        self.classes: list[str] = []

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node.name)
        self.generic_visit(node)
        self.classes.pop()

    def visit_Call(self, node: ast.Call) -> None:
        context, text = self._message(node)
        if context and text:
            location = f"{self.path.relative_to(ROOT)}:{node.lineno}"
            self.messages[context].setdefault(text, []).append(location)
        self.generic_visit(node)

    def _message(self, node: ast.Call) -> tuple[str | None, str | None]:
        func = node.func
        first = _literal(node.args[0]) if node.args else None
        if isinstance(func, ast.Name) and func.id == "_tr":
            return self.helper_context, first
        if isinstance(func, ast.Name) and func.id == "tr":
            keyword = next((_literal(k.value) for k in node.keywords if k.arg == "context"), None)
            positional = _literal(node.args[1]) if len(node.args) > 1 else None
            return keyword or positional or DEFAULT_CONTEXT, first
        if isinstance(func, ast.Attribute) and func.attr == "tr" and isinstance(func.value, ast.Name) \
                and func.value.id == "self" and self.classes:
            return self.classes[-1], first
        if isinstance(func, ast.Name) and func.id == "QT_TRANSLATE_NOOP" and len(node.args) > 1:
            return first, _literal(node.args[1])  # marked where it is declared, translated where shown
        if isinstance(func, ast.Attribute) and func.attr == "translate" and len(node.args) > 1:
            return first, _literal(node.args[1])
        return None, None


#: The contexts that translate the labels the contract declares for the plugin (``PluginField``): the
#: Processing parameters and the dock's panels.
DECLARED_CONTEXTS = ("TerraprobeAlgorithm", "ActionPanels")


def _declared(messages: Messages) -> None:
    """Labels, tooltips and choice labels declared in ``backend/contract/commands.py`` (shown translated)."""
    sys.path.insert(0, str(ROOT))
    from plugin.requests_builder import OFFERED

    path = ROOT / "backend" / "contract" / "commands.py"
    lines = path.read_text(encoding="utf-8").splitlines()
    for option, _ in OFFERED.values():
        for text in (option.plugin.label, option.plugin.help, *option.plugin.choice_labels):
            line = next((n for n, each in enumerate(lines, 1) if f'"{text[:25]}' in each), 1)
            for context in DECLARED_CONTEXTS:
                messages[context].setdefault(text, []).append(f"{path.relative_to(ROOT)}:{line}")


def extract() -> Messages:
    """Every translatable string of the plugin by context."""
    messages: Messages = defaultdict(dict)
    helpers = _module_contexts()
    for path in sorted(PLUGIN.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        _Collector(path, helpers.get(path), messages).visit(tree)
    _declared(messages)
    return messages


def _existing(ts_file: Path) -> dict[tuple[str, str], str]:
    if not ts_file.is_file():
        return {}
    translations = {}
    for context in ET.parse(ts_file).getroot().iter("context"):
        name = context.findtext("name") or ""
        for message in context.iter("message"):
            text = message.findtext("translation") or ""
            if text:
                translations[(name, message.findtext("source") or "")] = text
    return translations


def write_ts(ts_file: Path, language: str, messages: Messages) -> tuple[int, int]:
    """Write ``ts_file`` for ``messages`` keeping its translations; (translated, total) counts."""
    known = _existing(ts_file)
    root = ET.Element("TS", version="2.1", language=language)
    translated = total = 0
    for context_name in sorted(set(messages) | {c for c, _ in known}):
        context = ET.SubElement(root, "context")
        ET.SubElement(context, "name").text = context_name
        sources = messages.get(context_name, {})
        stale = sorted(s for c, s in known if c == context_name and s not in sources)
        for source in [*sorted(sources), *stale]:
            message = ET.SubElement(context, "message")
            for location in sources.get(source, []):
                filename, line = location.rsplit(":", 1)
                ET.SubElement(message, "location", filename=f"../{filename}", line=line)
            ET.SubElement(message, "source").text = source
            translation = ET.SubElement(message, "translation")
            text = known.get((context_name, source), "")
            translation.text = text
            if source not in sources:
                translation.set("type", "obsolete")
            elif not text:
                translation.set("type", "unfinished")
            else:
                translated += 1
            total += source in sources
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    ts_file.write_text('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n' + body + "\n",
                       encoding="utf-8")
    return translated, total


def compile_qm(ts_file: Path) -> None:
    lrelease = shutil.which("lrelease") or shutil.which("lrelease-qt5")
    if lrelease is None:
        sys.exit("error: lrelease not found (Debian: apt-get install qttools5-dev-tools)")
    subprocess.run([lrelease, "-silent", str(ts_file), "-qm", str(ts_file.with_suffix(".qm"))], check=True)


def main() -> None:
    messages = extract()
    for ts_file in sorted(I18N.glob("terraprobe_*.ts")):
        language = ts_file.stem.split("_", 1)[1]
        translated, total = write_ts(ts_file, language, messages)
        compile_qm(ts_file)
        print(f"{ts_file.relative_to(ROOT)}: {translated} of {total} strings translated")


if __name__ == "__main__":
    main()
