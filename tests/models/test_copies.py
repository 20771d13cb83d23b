"""Code copied between model families (each family ships alone as remote code) stays equal to its original.

A copy is marked, as in transformers, by a comment `# Copied from hf_seq.models.<family>.<module>.<name>` on the line
before it; `<name>` may be a dotted path inside the module (`Class.method`).
"""

import ast
import re
import textwrap
from pathlib import Path

import pytest

import hf_seq


PACKAGE_ROOT = Path(hf_seq.__file__).parent
MARKER = re.compile(r"^(?P<indent>\s*)# Copied from (?P<target>hf_seq(?:\.\w+)+)\s*$")


def _node_source(source, node):
    """The source text of a definition or assignment, dedented, without comment lines."""
    segment = ast.get_source_segment(source, node, padded=True)
    lines = [line for line in textwrap.dedent(segment).splitlines() if not line.strip().startswith("#")]
    return "\n".join(lines)


def _find(tree, dotted_name):
    """The node defining `dotted_name` (e.g. `Class.method`, or a module-level constant) in a module's tree."""
    body = tree.body
    node = None
    for name in dotted_name.split("."):
        node = next(
            (
                candidate
                for candidate in body
                if (isinstance(candidate, (ast.FunctionDef, ast.ClassDef)) and candidate.name == name)
                or (
                    isinstance(candidate, ast.Assign)
                    and any(getattr(t, "id", None) == name for t in candidate.targets)
                )
            ),
            None,
        )
        if node is None:
            return None
        body = getattr(node, "body", [])
    return node


def _copies():
    """(copy file, line, target, copied source) for every marked copy in the model families."""
    found = []
    for path in sorted((PACKAGE_ROOT / "models").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        nodes = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign))]
        for line_number, line in enumerate(source.splitlines(), start=1):
            match = MARKER.match(line)
            if not match:
                continue
            # The copy is the first definition starting after the marker (other comment lines may come between).
            following = min((node for node in nodes if node.lineno > line_number), key=lambda node: node.lineno)
            found.append((path, line_number, match["target"], _node_source(source, following)))
    return found


COPIES = _copies()


def test_the_families_mark_their_copies():
    families = {path.parent.name for path, *_ in COPIES}
    assert {"transformer", "word2vec"} <= families  # both copy the recurrent family's config helpers
    assert len(COPIES) >= 8
    # The Transformer family's input validation and pooling share the recurrent family's helpers.
    transformer_targets = {
        target.rsplit(".", 1)[-1] for path, _, target, _ in COPIES if path.parent.name == "transformer"
    }
    assert {"_validate_input_ids", "_masked_mean", "_masked_max"} <= transformer_targets


@pytest.mark.parametrize("path, line_number, target, copied", COPIES, ids=[f"{c[0].name}:{c[1]}" for c in COPIES])
def test_each_copy_equals_its_original(path, line_number, target, copied):
    module_path, name = None, None
    parts = target.split(".")
    for split in range(len(parts) - 1, 1, -1):  # the longest prefix that is a module file
        candidate = PACKAGE_ROOT.joinpath(*parts[1:split]).with_suffix(".py")
        if candidate.exists():
            module_path, name = candidate, ".".join(parts[split:])
            break
    assert module_path is not None, f"{path.name}:{line_number}: no module for {target}"
    assert module_path != path, f"{path.name}:{line_number}: a copy cannot come from its own file"
    original_source = module_path.read_text(encoding="utf-8")
    original = _find(ast.parse(original_source), name)
    assert original is not None, f"{target} not found in {module_path}"
    assert copied == _node_source(original_source, original), f"{path.name}:{line_number} differs from {target}"
