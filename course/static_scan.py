"""Trusted static scan of what a student wrote: code that reaches for the test machinery, read, never run.

The grading guard (:mod:`course.kernel_guard`, :mod:`course.guarded_execute`) undoes or detects tampering while
the notebook runs; this scan backs it up from outside the kernel, in the grader's own process. Each code cell a
student could have written (every code cell except the locked instructor cells identical to the source
notebook) is turned into Python by IPython's own ``TransformerManager`` (so ``!cmd`` and ``%magic`` lines become
the calls they run), parsed with :mod:`ast`, and walked; so are the ``.py`` files in the submission folder. A
finding names the cell (its nbgrader id and position) or the file, the line, and what was found:

- the running shell: ``get_ipython``, input and AST transformers, ``set_custom_exc``, event callbacks
  (``events.register``), ``showtraceback``/``run_cell``-style internals, IPython/ipykernel/zmq imports;
- the interpreter: ``sys.settrace``/``setprofile``, ``builtins``/``__builtins__``, ``sys.modules``, ``sys.meta_path``,
  ``excepthook``/``displayhook``, frames (``sys._getframe``, ``inspect.currentframe``, ``f_back``, ``tb_frame``),
  ``gc.get_objects``, ``ctypes``, ``__code__``/``__globals__``, ``linecache``;
- dynamic code: ``exec``, ``eval``, ``compile``, ``__import__``, ``importlib``, ``getattr``/``setattr``/``delattr``
  with a computed name or on a module, ``types.FunctionType``/``CodeType``;
- assignments to attributes of imported modules (``np.allclose = …``, ``keras.models.load_model = …``;
  ``pd.options``/``rcParams`` settings excepted);
- shell escapes and magics (``!cmd``, ``%run``, ``%%bash``; ``%matplotlib``, ``%time``, ``%timeit``, ``%%capture``
  and a few other harmless ones excepted, their code scanned), ``os.system``, ``subprocess``, threads and
  signal handlers (code that runs while the tests run);
- code hidden in data: ``pickle``/``marshal``/``dill`` loads, ``np.load(allow_pickle=True)``,
  ``load_model(safe_mode=False)``;
- code run from a string or a file: imports of the modules that run it (``timeit``, ``runpy``, ``profile``/
  ``cProfile``, ``pdb``/``bdb``, ``trace``, ``doctest``, ``pydoc``, ``site``, ``zipimport``, ``logging.config``, …);
- code inside strings: every string constant (docstrings and bytes too) that parses as Python and holds a call, an
  import, an attribute or a definition (its doctest examples too) is scanned like a cell, three strings deep, each
  finding reported at the string's line as ``in a string: …`` (bare words such as ``"eval"`` or ``"relu"`` are
  no code); a string that names a listed attribute exactly (``getattr(sys, "settrace")``,
  ``globals()["__builtins__"]``) is a finding; the code a ``%timeit``/``%prun`` magic runs is scanned past its
  options (``-n1 -r1``);
- a ``.py`` file or package in the submission folder named like an installed module (``sklearn/``, ``course/``).

A string over ``MAX_STRING_CHARS`` that could hold code, strings nested deeper than ``MAX_STRING_DEPTH``, more than
``MAX_CODE_STRINGS`` strings of code in one cell or file, and code nested too deeply for the parser are findings by
themselves, not scanned. Code built at run time (joined, encoded, read from a data file) still slips past the string
scan; what runs it (``exec``, ``timeit``, ``runpy``, …) is what is flagged then.

A finding is a reason for a person to look, never a score change: the reference solutions scan clean (tested).
Command line: ``python -m course.static_scan NOTEBOOK_OR_FOLDER...`` prints the findings.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

from .kernel_guard import VERDICT_BUILTINS  # builtins whose replacement changes what a test concludes

#: Line and cell magics that run nothing but the code they are given (which is scanned) or only change display.
HARMLESS_MAGICS = {"matplotlib", "time", "timeit", "capture", "xmode", "who", "whos", "pwd", "prun", "memit"}
#: Magics whose argument (line magic) or body (cell magic) is Python code, scanned like the cell.
CODE_MAGICS = {"time", "timeit", "capture", "prun", "memit"}
#: Attributes whose use reaches the test machinery: name -> what it is.
ATTRIBUTES = {
    "input_transformers_post": "an IPython input transformer list",
    "input_transformers_cleanup": "an IPython input transformer list",
    "input_transformer_manager": "IPython's input transformers",
    "ast_transformers": "IPython's AST transformers",
    "set_custom_exc": "a custom exception handler (set_custom_exc)",
    "custom_exceptions": "IPython's custom exception handlers",
    "CustomTB": "IPython's custom exception handler",
    "showtraceback": "IPython's traceback display",
    "run_cell": "IPython's cell runner",
    "run_cell_async": "IPython's cell runner",
    "run_ast_nodes": "IPython's cell runner",
    "run_code": "IPython's cell runner",
    "transform_cell": "IPython's input transformers",
    "transform_ast": "IPython's AST transformers",
    "do_execute": "the kernel's execute handler",
    "execute_request": "the kernel's execute handler",
    "shell_handlers": "the kernel's message handlers",
    "user_expressions": "the kernel's user expressions",
    "display_formatter": "IPython's display formatters",
    "for_type": "a display formatter",
    "for_type_by_name": "a display formatter",
    "displayhook": "the display hook",
    "excepthook": "the exception hook",
    "settrace": "a trace function (settrace)",
    "setprofile": "a profile function (setprofile)",
    "_getframe": "frames of running code",
    "addaudithook": "an audit hook (runs on every interpreter event)",
    "ctypeslib": "raw memory (numpy.ctypeslib)",
    "currentframe": "frames of running code",
    "getouterframes": "frames of running code",
    "getinnerframes": "frames of running code",
    "f_back": "frames of running code",
    "f_globals": "frames of running code",
    "f_locals": "frames of running code",
    "f_trace": "frames of running code",
    "f_lineno": "frames of running code",
    "tb_frame": "frames of running code",
    "gi_frame": "frames of running code",
    "cr_frame": "frames of running code",
    "get_objects": "every object of the interpreter (gc)",
    "get_referrers": "every object of the interpreter (gc)",
    "get_referents": "every object of the interpreter (gc)",
    "__code__": "a function's code object",
    "__globals__": "a function's globals",
    "__closure__": "a function's closure",
    "__subclasses__": "every subclass of a type",
    "__builtins__": "the builtins",
    "meta_path": "the import system (sys.meta_path)",
    "path_hooks": "the import system (sys.path_hooks)",
    "path_importer_cache": "the import system",
    "FunctionType": "functions built from code objects",
    "CodeType": "code objects built by hand",
    "enable_unsafe_deserialization": "Keras' unsafe deserialization (arbitrary code in a model file)",
}
#: Names whose use is a finding wherever they appear.
NAMES = {
    "get_ipython": "the running IPython shell (get_ipython)",
    "__builtins__": "the builtins",
    "exec": "dynamic code (exec)",
    "eval": "dynamic code (eval)",
    "compile": "dynamic code (compile)",
    "__import__": "dynamic imports (__import__)",
    "breakpoint": "the debugger (breakpoint)",
}
#: Modules whose import is a finding: name (a top-level name, or a dotted one for that submodule) -> what they give.
MODULES = {
    "builtins": "the builtins",
    "ctypes": "raw memory (ctypes)",
    "cffi": "raw memory (cffi)",
    "gc": "every object of the interpreter (gc)",
    "importlib": "dynamic imports (importlib)",
    "imp": "dynamic imports (imp)",
    "linecache": "the source of cells that ran (linecache)",
    "pickle": "code hidden in data (pickle)",
    "_pickle": "code hidden in data (pickle)",
    "dill": "code hidden in data (dill)",
    "cloudpickle": "code hidden in data (cloudpickle)",
    "marshal": "code hidden in data (marshal)",
    "shelve": "code hidden in data (shelve)",
    "subprocess": "other programs (subprocess)",
    "pty": "other programs (pty)",
    "threading": "threads (code that runs while the tests run)",
    "_thread": "threads",
    "signal": "signal handlers",
    "atexit": "exit handlers",
    "code": "an interactive interpreter (code)",
    "codeop": "dynamic code (codeop)",
    "timeit": "code run from a string (timeit)",
    "posix": "other programs (posix: os.system without os)",
    "multiprocessing": "other processes (code that runs while the tests run)",
    "concurrent": "threads and processes (concurrent.futures: code that runs while the tests run)",
    "runpy": "code run from a file or module (runpy)",
    "profile": "code run from a string (profile.run)",
    "cProfile": "code run from a string (cProfile.run)",
    "_lsprof": "a profile function (cProfile's profiler)",
    "pdb": "the debugger (code run from a string, frames)",
    "bdb": "the debugger's base (code run from a string, trace functions)",
    "trace": "code run from a string under a trace function (trace)",
    "doctest": "code run from docstrings (doctest)",
    "pydoc": "code run from a file (pydoc.importfile)",
    "site": "code run from .pth files (site.addsitedir)",
    "zipimport": "code run from a zip archive (zipimport)",
    "pkgutil": "dynamic imports (pkgutil)",
    "rlcompleter": "code run from a string (rlcompleter evaluates what it completes)",
    "idlelib": "an interactive interpreter (idlelib)",
    "logging.config": "code named or evaluated in a configuration (logging.config)",
    "IPython": "IPython's internals",
    "ipykernel": "the kernel's internals",
    "jupyter_client": "the kernel's messaging",
    "zmq": "the kernel's sockets",
    "traitlets": "IPython's configuration",
    "nbformat": "notebook files",
    "nbclient": "notebook execution",
    "nbgrader": "the grader",
}
#: Imports of these modules are fine although their top-level package is listed above.
ALLOWED_MODULES = ("IPython.display", "IPython.core.display")
#: Calls that run another program: (module, function).
PROGRAMS = {
    ("os", "system"),
    ("os", "popen"),
    ("os", "execv"),
    ("os", "execve"),
    ("os", "execvp"),
    ("os", "execl"),
    ("os", "execlp"),
    ("os", "spawnv"),
    ("os", "spawnl"),
    ("os", "posix_spawn"),
    ("os", "fork"),
    ("os", "forkpty"),
    ("os", "kill"),
    ("os", "killpg"),
}
#: Calls that load code hidden in data: (module, function).
LOADS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("marshal", "load"),
    ("marshal", "loads"),
    ("dill", "load"),
    ("dill", "loads"),
    ("cloudpickle", "load"),
    ("cloudpickle", "loads"),
    ("joblib", "load"),
    ("pandas", "read_pickle"),
    ("torch", "load"),
    ("shelve", "open"),
}
#: Parts of a module attribute chain that mark a setting, not a replaced function (``pd.options.display...``).
SETTINGS = ("options", "rcParams", "environ")
#: Names that stand for modules in a notebook even where the scan saw no import of them.
USUAL_ALIASES = {
    "np": "numpy",
    "pd": "pandas",
    "tf": "tensorflow",
    "plt": "matplotlib.pyplot",
    "keras": "keras",
    "sys": "sys",
    "os": "os",
    "builtins": "builtins",
    "sklearn": "sklearn",
}
#: Largest .py file scanned (bytes); a larger one is a finding by itself.
MAX_PY_BYTES = 1024 * 1024
#: Longest string constant scanned as code (characters); a longer one that could hold code is a finding by itself.
MAX_STRING_CHARS = 100_000
#: How many strings deep code inside strings is scanned (a string in a cell is 1, a string inside it 2, …); a magic's
#: code counts as a string. Code deeper than this is a finding by itself.
MAX_STRING_DEPTH = 3
#: Most strings scanned as code in one cell or file, all depths together; past it a finding says the rest was not.
MAX_CODE_STRINGS = 10_000
#: Nodes that make a string that parses as Python code worth scanning; a string of bare words (``"eval"``,
#: ``"relu"``, ``"compile and fit"``) is not code.
CODE_NODES = (
    ast.Call,
    ast.Import,
    ast.ImportFrom,
    ast.Attribute,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Delete,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.Global,
    ast.Nonlocal,
)
#: Strings that name the test machinery wherever they appear (``getattr(sys, "settrace")``,
#: ``globals()["__builtins__"]``): the attributes above and the names that are no English word.
NAMED_IN_STRINGS = {
    **ATTRIBUTES,
    **{name: what for name, what in NAMES.items() if "_" in name},
}
#: Most leading words of a magic's argument taken for its options (``%timeit -n1 -r1 code``).
MAX_OPTION_WORDS = 8


@dataclass(frozen=True)
class Finding:
    """One thing found: where (a cell or a file), the line (1-based, in the cell or file), what."""

    where: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.where}, line {self.line}: {self.what}"


def _python(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def _chain(node) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; None unless it is names and attributes only."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(names)]
    return None


def _is_get_ipython_call(node) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "get_ipython"


def _listed(name: str) -> str | None:
    """What importing the module ``name`` gives if :data:`MODULES` lists it or a package above it; None if not
    (or if :data:`ALLOWED_MODULES` allows it)."""
    if name.startswith(ALLOWED_MODULES):
        return None
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in MODULES:
            return MODULES[".".join(parts[:end])]
    return None


def _parse_quietly(text: str):
    """``ast.parse(text)``, with no warnings shown (a string's escapes); SyntaxError, ValueError or RecursionError
    as they come."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(text)


def _code_in(text: str) -> tuple[list, bool]:
    """(trees, too deep) for the Python a string could hold: the string itself (as it is, dedented, or cleaned as a
    docstring) and its doctest examples (``>>> f(2)``), each kept only if it parses and holds one of
    :data:`CODE_NODES`; ``too deep`` says that some of it was nested too deeply for the parser."""
    if "(" not in text and "." not in text and "=" not in text and "import" not in text and "lambda" not in text:
        return [], False  # no call, attribute, import, assignment or definition can be in it
    sources = [text]
    if ">>>" in text:
        import doctest

        try:
            sources.append("".join(example.source for example in doctest.DocTestParser().get_examples(text)))
        except ValueError:  # inconsistent indentation of the examples
            pass
    trees, too_deep = [], False
    for source in sources:
        for candidate in dict.fromkeys((source, textwrap.dedent(source), inspect.cleandoc(source))):
            try:
                tree = _parse_quietly(candidate)
            except (SyntaxError, ValueError):
                continue
            except RecursionError:
                too_deep = True
                break
            if any(isinstance(node, CODE_NODES) for node in ast.walk(tree)):
                trees.append(tree)
            break
    return trees, too_deep


def _without_options(text: str) -> str:
    """A magic's argument without its leading options: ``-n1 -r1 code`` -> ``code`` (the longest tail after up to
    :data:`MAX_OPTION_WORDS` words that parses as a cell; ``text`` itself if it does not start with ``-`` or no
    tail parses)."""
    if not text.lstrip().startswith("-"):
        return text
    for count in range(1, MAX_OPTION_WORDS + 1):
        words = text.split(None, count)
        if len(words) <= count:
            break
        try:
            _parse_quietly(_python(words[-1]))
        except (SyntaxError, ValueError, RecursionError):
            continue
        return words[-1]
    return text


class _Scanner(ast.NodeVisitor):
    def __init__(self, where: str, offset: int, level: int = 0, budget: list[int] | None = None):
        self.where, self.offset = where, offset
        self.level = level  # how many strings (or magics' code) deep this code is
        self.budget = budget if budget is not None else [MAX_CODE_STRINGS]  # strings left to scan as code, shared
        self.found: list[Finding] = []
        self.code_strings: set[int] = set()  # id() of string constants scanned as a magic's code already
        self.modules: dict[str, str] = {}  # local name -> module it names
        self.allowed_calls: set[int] = set()  # id() of get_ipython() calls a harmless magic made
        self.depth = 0  # inside a function or class body: names there are local
        self.whole_modules: set[str] = set(USUAL_ALIASES)  # names bound by `import m` (not `from m import x`)

    def add(self, node, what: str) -> None:
        self.found.append(Finding(self.where, getattr(node, "lineno", 1) + self.offset, what))

    def scan_code(self, text: str, node, first_line: int) -> None:
        """Scan code a magic runs (its argument past its options, or its body from the cell's line
        ``first_line``)."""
        if self.level >= MAX_STRING_DEPTH:
            self.add(node, f"runs code nested more than {MAX_STRING_DEPTH} strings or magics deep, not scanned")
            return
        self.found += _scan(
            _python(_without_options(text)),
            self.where,
            getattr(node, "lineno", 1) + self.offset + first_line - 2,
            self.modules,
            self.level + 1,
            self.budget,
        )

    # strings
    def visit_Constant(self, node):
        value = node.value
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return
        if not isinstance(value, str) or id(node) in self.code_strings:
            return
        if value in NAMED_IN_STRINGS:
            self.add(node, f"in a string: names {value}: {NAMED_IN_STRINGS[value]}")
        if len(value) > MAX_STRING_CHARS:
            if any(mark in value for mark in ("(", ".", "=", "import", "lambda")):
                self.add(node, f"a string of {len(value):,} characters, too long to scan as code")
            return
        if self.budget[0] < 0:
            return
        trees, too_deep = _code_in(value)
        if too_deep:
            self.add(node, "in a string: code nested too deeply to parse, not scanned")
        if not trees:
            return
        if self.level >= MAX_STRING_DEPTH:
            self.add(node, f"in a string: code nested more than {MAX_STRING_DEPTH} strings deep, not scanned")
            return
        self.budget[0] -= 1
        if self.budget[0] < 0:
            if self.budget[0] == -1:
                self.add(node, f"more than {MAX_CODE_STRINGS:,} strings that hold code: from here on not scanned")
            return
        for tree in trees:
            for finding in _scan_tree(tree, self.where, 0, self.modules, self.level + 1, self.budget):
                self.add(node, f"in a string: {finding.what}")

    # imports
    def visit_Import(self, node):
        for alias in node.names:
            self._module(node, alias.name)
            self.modules[alias.asname or alias.name.split(".")[0]] = (
                alias.name if alias.asname else alias.name.split(".")[0]
            )
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        if node.module and not node.level:
            self._module(node, node.module)
            for alias in node.names:
                if alias.name == "*":
                    continue
                full = f"{node.module}.{alias.name}"
                self._module(node, full)
                self.modules[alias.asname or alias.name] = full
                if alias.name in NAMES or alias.name in ATTRIBUTES or (node.module, alias.name) == ("sys", "modules"):
                    self.add(
                        node,
                        f"imports {alias.name}: "
                        f"{NAMES.get(alias.name) or ATTRIBUTES.get(alias.name, 'the loaded modules')}",
                    )
        self.generic_visit(node)

    def _module(self, node, name: str) -> None:
        what = _listed(name)
        if what:
            self.add(node, f"imports {name}: {what}")

    # names and attributes
    def visit_Name(self, node):
        if node.id in NAMES and not (node.id == "get_ipython" and id(node) in self.allowed_calls):
            self.add(node, f"uses {node.id}: {NAMES[node.id]}")

    def visit_Attribute(self, node):
        chain = _chain(node) or []
        if node.attr in ATTRIBUTES:
            self.add(node, f"uses .{node.attr}: {ATTRIBUTES[node.attr]}")
        elif (
            node.attr in ("register", "unregister", "callbacks")
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "events"
        ):
            self.add(node, f"uses events.{node.attr}: an IPython event callback (runs around every cell)")
        elif chain[:1] and self.modules.get(chain[0], "") == "sys" and node.attr == "monitoring":
            self.add(node, "uses sys.monitoring: callbacks on every event of running code")
        elif chain[:1] and self.modules.get(chain[0], "") == "sys" and node.attr in ("modules", "__dict__"):
            self.add(node, f"uses sys.{node.attr}: the interpreter's loaded modules")
        elif chain[:1] and self.modules.get(chain[0], "") == "inspect" and node.attr in ("stack", "trace"):
            self.add(node, "uses inspect.stack: frames of running code")
        self.generic_visit(node)

    # calls
    def visit_Call(self, node):
        func = node.func
        chain = _chain(func) or []
        module = self.modules.get(chain[0], chain[0]) if chain else ""
        name = chain[-1] if chain else ""
        first = node.args[0] if node.args else None
        if name == "vars" and isinstance(first, ast.Name) and self.modules.get(first.id, "") == "sys":
            self.add(node, "calls vars(sys): the interpreter's loaded modules (sys.modules)")
        if name in ("attrgetter", "methodcaller") and any(
            isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.split(".")[0] == "modules"
            for a in node.args
        ):
            self.add(node, f'calls {name}("modules…"): the interpreter\'s loaded modules (sys.modules)')
        if isinstance(func, ast.Attribute) and _is_get_ipython_call(func.value):
            self._ipython_call(node, func.attr)
        if (
            len(chain) >= 2
            and chain[0] in self.modules
            and chain[-2:-1] == ["path"]
            and chain[-1] in ("insert", "append", "extend", "remove", "pop", "clear")
        ):
            if self.modules.get(chain[0], "").split(".")[0] == "sys":
                self.add(node, "changes sys.path: the import path")
        if (
            chain
            and (module.split(".")[0], name) in PROGRAMS
            or module.split(".")[0] == "os"
            and name.startswith(("exec", "spawn"))
        ):
            self.add(node, f"calls {'.'.join(chain)}: runs another program")
        if chain and ((module.split(".")[-1], name) in LOADS or (module.split(".")[0], name) in LOADS):
            self.add(node, f"calls {'.'.join(chain)}: loads code hidden in data")
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        if (
            name == "load"
            and isinstance(keywords.get("allow_pickle"), ast.Constant)
            and keywords["allow_pickle"].value is True
        ):
            self.add(node, f"calls {'.'.join(chain)}(allow_pickle=True): loads code hidden in data")
        if isinstance(keywords.get("safe_mode"), ast.Constant) and keywords["safe_mode"].value is False:
            self.add(node, f"calls {'.'.join(chain) or 'a loader'}(safe_mode=False): runs code from a model file")
        if isinstance(func, ast.Name) and func.id in ("getattr", "setattr", "delattr", "hasattr") and node.args:
            target = _chain(node.args[0])
            on_module = bool(target) and target[0] in self.modules
            computed = len(node.args) > 1 and not isinstance(node.args[1], ast.Constant)
            if func.id in ("setattr", "delattr") and (on_module or computed):
                self.add(
                    node,
                    f"calls {func.id} on {'a module' if on_module else 'a computed name'}: "
                    "changes attributes out of sight",
                )
            elif func.id == "getattr" and on_module and computed:
                self.add(node, "calls getattr with a computed name on a module")
            if (
                target
                and self.modules.get(target[0], "") == "sys"
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value == "modules"
            ):
                self.add(node, f'calls {func.id}(…, "modules"): the interpreter\'s loaded modules')
        if chain[-2:] in (["asyncio", "get_event_loop"], ["asyncio", "get_running_loop"]) or name in (
            "call_soon",
            "call_later",
            "call_at",
            "call_soon_threadsafe",
            "run_in_executor",
        ):
            self.add(node, f"calls {'.'.join(chain) or name}: schedules code to run later (while the tests run)")
        self.generic_visit(node)

    def _ipython_call(self, node, attr: str) -> None:
        args = node.args
        first = args[0].value if args and isinstance(args[0], ast.Constant) else None
        if attr in ("system", "getoutput"):
            self.allowed_calls.add(id(node.func.value.func))
            self.add(node, f"runs a shell command ({'!' if attr == 'system' else '!!'}{first or '…'})")
        elif attr in ("run_line_magic", "run_cell_magic") and isinstance(first, str):
            self.allowed_calls.add(id(node.func.value.func))
            sign = "%" if attr == "run_line_magic" else "%%"
            if first not in HARMLESS_MAGICS:
                self.add(node, f"runs the magic {sign}{first}")
            if first in CODE_MAGICS:
                texts = [a for a in args[1:] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                for text in texts:
                    self.code_strings.add(id(text))
                    self.scan_code(text.value, node, 2 if attr == "run_cell_magic" else 1)

    # assignments to attributes of imported modules, names of modules and builtins the tests use
    def _targets(self, node, targets, value=None) -> None:
        for target in targets:
            for sub in ast.walk(target) if isinstance(target, (ast.Tuple, ast.List)) else [target]:
                chain = _chain(sub) if isinstance(sub, ast.Attribute) else None
                if chain and chain[0] in self.modules and not any(part in SETTINGS for part in chain[1:]):
                    self.add(
                        node,
                        f"assigns {'.'.join(chain)}: replaces an attribute of {self.modules[chain[0]]}, "
                        "which the notebook imported",
                    )
                if isinstance(sub, ast.Name) and self.depth == 0:
                    self._rebinds(node, sub.id, value)

    def _rebinds(self, node, name: str, value) -> None:
        if name in VERDICT_BUILTINS and isinstance(
            value, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        ):
            self.add(node, f"defines {name}, hiding the builtin the tests use")
        elif (
            name in self.whole_modules
            and not (isinstance(value, ast.Name) and value.id in self.modules)
            and isinstance(node, (ast.Assign, ast.AnnAssign))
        ):
            module = self.modules.get(name, USUAL_ALIASES.get(name, name))
            self.add(node, f"assigns {name}, the name of the module {module}")

    def visit_FunctionDef(self, node):
        if self.depth == 0:
            self._rebinds(node, node.name, node)
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        if self.depth == 0:
            self._rebinds(node, node.name, node)
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_Lambda(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_Assign(self, node):
        self._targets(node, node.targets, node.value)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._targets(node, [node.target])
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._targets(node, [node.target], node.value)
        self.generic_visit(node)

    def visit_Delete(self, node):
        self._targets(node, node.targets)
        self.generic_visit(node)


def _imported(tree) -> tuple[dict[str, str], set[str]]:
    """({local name: what it names}, {local names of whole modules}) for the imports in ``tree`` (``from m import
    x`` names ``m.x``, which may be a module or not)."""
    names, modules = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                names[local] = alias.name if alias.asname else alias.name.split(".")[0]
                modules.add(local)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.update(
                {alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"}
            )
    return names, modules


def scan_source(source: str, where: str, offset: int = 0, modules: dict[str, str] | None = None) -> list[Finding]:
    """The findings (a list of :class:`Finding`, each once, in the order found) in one cell's IPython source or one
    file's Python, turned into Python by IPython's transformers first: its code, the code its magics run and the
    code inside its strings (:data:`MAX_STRING_DEPTH` strings deep). ``where`` names the cell or file, ``offset``
    is added to line numbers, ``modules`` maps local names to the modules they stand for (imports in ``source``
    are added). A syntax error is no finding (the cell fails when it runs); code nested too deeply to parse or to
    walk is one. Raises nothing of its own."""
    return _scan(_python(source), where, offset, modules, 0, [MAX_CODE_STRINGS])


def _scan(
    python: str, where: str, offset: int, modules: dict[str, str] | None, level: int, budget: list[int]
) -> list[Finding]:
    """:func:`scan_source` of code already turned into Python, ``level`` strings or magics deep, with ``budget[0]``
    strings left to scan as code."""
    try:
        tree = _parse_quietly(python)
    except (SyntaxError, ValueError):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = compile(python, "<cell>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except (SyntaxError, ValueError):
            return []
        except RecursionError:
            return [Finding(where, 1 + offset, "code nested too deeply to parse, not scanned")]
    except RecursionError:
        return [Finding(where, 1 + offset, "code nested too deeply to parse, not scanned")]
    return _scan_tree(tree, where, offset, modules, level, budget)


def _scan_tree(
    tree, where: str, offset: int, modules: dict[str, str] | None, level: int, budget: list[int]
) -> list[Finding]:
    """The findings in a parsed module ``tree`` (see :func:`scan_source`), ``level`` strings or magics deep."""
    scanner = _Scanner(where, offset, level, budget)
    scanner.modules.update(modules or {})
    names, whole = _imported(tree)  # imports anywhere in the source name their modules for every line
    scanner.modules.update(names)
    scanner.whole_modules |= whole
    for node in ast.walk(tree):  # get_ipython() made by a harmless magic is not a finding
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and _is_get_ipython_call(node.func.value)
            and node.func.attr in ("run_line_magic", "run_cell_magic")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in HARMLESS_MAGICS
        ):
            scanner.allowed_calls.add(id(node.func.value.func))
    try:
        scanner.visit(tree)
    except RecursionError:
        scanner.found.append(Finding(where, 1 + offset, "code nested too deeply to scan, the rest not scanned"))
    return list(dict.fromkeys(scanner.found))


def cell_label(cell, index: int) -> str:
    """``cell "grade_id" (cell 3)``, or ``cell 3`` for a cell without an nbgrader id (1-based position)."""
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f'cell "{grade_id}" (cell {index + 1})' if grade_id else f"cell {index + 1}"


def student_cells(nb, instructor_sources: set[str] | None = None) -> list[tuple[int, object]]:
    """(index, cell) of every code cell a student could have written: all code cells but the locked ones whose
    source is one of ``instructor_sources`` (the source notebook's locked cells; None: trust nbgrader's ``locked``
    metadata alone, as in a source notebook)."""
    chosen = []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        locked = bool(cell.get("metadata", {}).get("nbgrader", {}).get("locked"))
        source = cell.get("source", "")
        if locked and (instructor_sources is None or source in instructor_sources):
            continue
        chosen.append((index, cell))
    return chosen


def notebook_modules(nb) -> dict[str, str]:
    """{local name: module} for the imports of every code cell of ``nb`` (a module imported in an instructor cell
    is the same object in a student's cell), over the usual aliases (``np``, ``pd``, ``tf``, ``plt``)."""
    modules = dict(USUAL_ALIASES)
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(_python(cell.get("source", "")))
        except (SyntaxError, ValueError):
            continue
        names, whole = _imported(tree)
        modules.update(names)
        modules.update({name: names[name] for name in whole})
    return modules


def scan_notebook(nb, instructor_sources: set[str] | None = None) -> list[Finding]:
    """Findings in every code cell a student could have written (:func:`student_cells`), in notebook order."""
    found, modules = [], notebook_modules(nb)
    for index, cell in student_cells(nb, instructor_sources):
        found += scan_source(cell.get("source", ""), cell_label(cell, index), modules=modules)
    return found


def _installed(name: str) -> bool:
    if name in sys.builtin_module_names or name in sys.stdlib_module_names:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def scan_folder(folder: Path) -> list[Finding]:
    """Findings in the ``.py`` files under ``folder`` (a submission folder), and each ``.py`` file or package
    named like an installed module (it would stand in for that module in an import). Links are not followed."""
    found = []
    folder = Path(folder)
    for path in sorted(folder.rglob("*.py")):
        if path.is_symlink() or not path.is_file() or ".ipynb_checkpoints" in path.parts:
            continue
        rel = path.relative_to(folder).as_posix()
        top = path.relative_to(folder).parts[0]
        name = top[:-3] if top.endswith(".py") else top
        if name.isidentifier() and _installed(name):
            found.append(
                Finding(
                    rel,
                    1,
                    f"a submitted module named like the installed module {name}: an import "
                    f"of {name} in the notebook could load this file instead",
                )
            )
        if path.stat().st_size > MAX_PY_BYTES:
            found.append(Finding(rel, 1, f"a .py file over {MAX_PY_BYTES:,} bytes, not scanned"))
            continue
        found += scan_source(path.read_text(errors="replace"), rel)
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m course.static_scan PATH...``: print the findings of notebooks (every code cell that is not
    locked) and folders (their notebooks and ``.py`` files); exit 1 if there is any."""
    import nbformat

    count = 0
    for arg in argv if argv is not None else sys.argv[1:]:
        path = Path(arg)
        found = []
        notebooks = sorted(path.rglob("*.ipynb")) if path.is_dir() else [path]
        for nb_path in notebooks:
            if ".ipynb_checkpoints" not in nb_path.parts:
                found += [
                    Finding(f"{nb_path}: {f.where}", f.line, f.what)
                    for f in scan_notebook(nbformat.read(nb_path, as_version=4))
                ]
        if path.is_dir():
            found += [Finding(f"{path}/{f.where}", f.line, f.what) for f in scan_folder(path)]
        for finding in found:
            print(finding)
        count += len(found)
    return 1 if count else 0


if __name__ == "__main__":
    raise SystemExit(main())
