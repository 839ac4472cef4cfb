"""The grading guard's half inside the kernel: undo tampering with the test machinery before each graded test cell.

Student code and the tests that score it run in one interpreter, so a submission can change how later cells run:
an IPython input or AST transformer that rewrites ``assert`` lines, ``set_custom_exc`` plus a ``post_run_cell``
hook that hides a failed test, a trace function, patched builtins (``isinstance``), a replaced test helper
(``np.allclose``, ``keras.models.load_model``), a forged display hook or a patched ``InteractiveShell.run_cell``.

:mod:`course.guarded_execute` (the grader's nbgrader ``Execute``) sends this module's **source** to the kernel
when it starts, before any student cell, and executes it there in a fresh module registered in ``sys.modules``
under a random name; it is never imported from disk (a submission folder could hold a ``course/`` package that
shadows the kit's). :func:`install` captures a baseline of the machinery, then the executor calls, over
``user_expressions`` (which IPython evaluates without input transformers, AST transformers or cell events):

- :func:`settle` after each instructor cell (trusted code): remembers the module names those cells bound
  (``np``, ``keras``) and the module attributes the test cells use (``np.allclose``);
- :func:`restore` before each graded test cell: puts the baseline back and says what it had to undo;
- :func:`mark` is called by the test cell itself, as a statement the executor inserts before its final
  expression (with a fresh random nonce): proof that the cell ran to its end, and a look at the machinery while
  the test runs;
- :func:`check` after the test cell: was the nonce reached, what changed during the cell; restores again, and for
  a cell with hidden tests forgets its source (``linecache``) and its outputs in IPython's history.

Each call returns ``repr`` of a dict of str/bool/list values (read back with ``ast.literal_eval``), carrying the
secret the executor chose, so that an error or a stray object is never taken for a clean report. The module keeps
private copies of the builtins and of the functions it relies on, taken before any student code ran.

This raises the bar, it is not a wall: everything here runs in the student's interpreter, and code that finds
this module (``sys.modules``, ``gc``) or reads the nonce from the running cell can forge its answers. The trusted
static scan (:mod:`course.static_scan`) flags the means such code needs.
"""

# Only modules that are always loaded are imported at the top; install() takes the rest from sys.modules while it
# is still pristine (no student cell has run).
import builtins
import sys

#: Builtin names whose replacement (in ``builtins`` or as a callable global of the notebook) changes what a test
#: concludes; a callable global of one of these names is removed before each test cell.
VERDICT_BUILTINS = (
    "isinstance",
    "issubclass",
    "len",
    "abs",
    "all",
    "any",
    "float",
    "int",
    "bool",
    "str",
    "type",
    "hasattr",
    "getattr",
    "round",
    "sum",
    "min",
    "max",
    "next",
    "sorted",
    "set",
    "list",
    "tuple",
    "dict",
    "zip",
    "range",
    "print",
    "repr",
    "iter",
    "map",
    "filter",
    "enumerate",
    "callable",
    "AssertionError",
    "Exception",
    "BaseException",
    "ValueError",
    "TypeError",
    "KeyError",
    "IndexError",
    "RuntimeError",
    "NotImplementedError",
    "__import__",
)
#: Names IPython's BuiltinTrap adds to builtins while a cell runs and removes after it.
TRAP_NAMES = ("exit", "quit", "get_ipython")
#: Builtins ipykernel replaces while a cell runs (input is answered by the front end, or refused).
RUN_NAMES = ("input", "raw_input")
#: Types whose plain-text display decides nbgrader's partial credit (a test cell's final number).
NUMBER_TYPES = (int, float, bool, complex, str, bytes, type(None))
#: Attributes of the shell that decide how a cell is run, displayed and reported.
SHELL_ATTRIBUTES = (
    "custom_exceptions",
    "CustomTB",
    "displayhook",
    "display_pub",
    "display_formatter",
    "display_trap",
    "builtin_trap",
    "events",
    "input_transformer_manager",
    "compile",
    "InteractiveTB",
    "SyntaxTB",
    "user_module",
    "kernel",
    "ast_node_interactivity",
    "autoawait",
    "loop_runner",
    "history_manager",
    "payload_manager",
)
SYS_HOOKS = (
    "displayhook",
    "excepthook",
    "breakpointhook",
    "unraisablehook",
    "stdout",
    "stderr",
    "modules",
    "meta_path",
    "path_hooks",
)

SECRET = ""
_S = {}  # the state: baseline, pins, findings (one dict, so that install() can fill it in place)


class _NoShadowFinder:
    """First entry of ``sys.meta_path``: a top-level import that would load a module from the submission folder
    (or another place outside the installation) while the installation has a module of that name gets the
    installed one, and the attempt is reported (a submitted ``sklearn/`` folder must not stand in for
    scikit-learn in a hidden test)."""

    def find_spec(self, name, path=None, target=None):
        if path is not None or "." in name:
            return None
        path_finder = _S["PathFinder"]
        try:
            spec = path_finder.find_spec(name, None)
        except Exception:
            return None
        if spec is None:
            return None
        origin = spec.origin if spec.origin not in (None, "namespace") else None
        where = origin or next(iter(spec.submodule_search_locations or ()), None)
        if where is None or _trusted_file(where):
            return None
        trusted = _find_installed(name)
        if trusted is None:
            return None  # the submission's own module; nothing installed has that name
        _S["shadow_findings"].append(
            f"`import {name}` would have loaded {where} from the submission instead of "
            "the installed module; the installed one was loaded"
        )
        return trusted


def _find_installed(name):
    """The spec of the installed top-level module ``name`` (the kit's own packages included), looked up on the
    path as it was before any student cell, outside the submission folder; None if there is none."""
    path_finder = _S["PathFinder"]
    try:
        spec = path_finder.find_spec(name, _S["trusted_path"])
    except Exception:
        spec = None
    for finder in _S["base_meta_path"]:
        if spec is not None:
            break
        if finder is path_finder or isinstance(finder, _NoShadowFinder) or not hasattr(finder, "find_spec"):
            continue
        try:
            spec = finder.find_spec(name, None, None)
        except Exception:
            spec = None
    return spec


def _genuine_module(module):
    """True for a module object that ``sys.modules`` holds under its own name and that comes from the
    installation (or is built in)."""
    if not isinstance(module, type(sys)):
        return False
    name = getattr(module, "__name__", None)
    if not isinstance(name, str) or _S["modules"].get(name) is not module:
        return False
    file = getattr(module, "__file__", None)
    if file:
        return _trusted_file(file)
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    return origin in ("built-in", "frozen") or (
        spec is not None
        and origin in (None, "namespace")
        and all(_trusted_file(p) for p in (spec.submodule_search_locations or ()))
    )


def _library_callable(value, name):
    """True for a callable an installed library provides under the name ``name`` (``from numpy import *`` binds
    ``sum`` and ``abs``, numpy's own), False for one the notebook made or renamed (``isinstance = lambda *a: True``,
    ``isinstance = functools.partial``)."""
    module_name = getattr(value, "__module__", None)
    if module_name in (None, "__main__") or module_name == getattr(_S["shell"].user_module, "__name__", None):
        return False
    module = _S["modules"].get(module_name) if isinstance(module_name, str) else None
    if module is None or not _genuine_module(module):
        return False
    if vars(module).get(name) is value:
        return True  # the library's own name for it (numpy.abs is numpy.absolute)
    if getattr(value, "__name__", None) != name:
        return False
    code = getattr(getattr(value, "__func__", value), "__code__", None)
    return code is None or _trusted_file(code.co_filename)


def _realpath(path):
    return _S["realpath"](str(path))


def _under(path, folder):
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _trusted_file(path):
    """True for a file of the Python installation or of the kit's packages, never of the submission folder."""
    try:
        real = _realpath(path)
    except Exception:
        return False
    if _under(real, _S["cwd"]):
        return False
    return any(_under(real, folder) for folder in _S["trusted_dirs"])


def _trusted_callable(fn):
    """An event callback defined in an installed library (matplotlib's inline backend registers one when pyplot is
    first imported): its code's file is the file of the module it names, inside the installation."""
    func = getattr(fn, "__func__", fn)
    code = getattr(func, "__code__", None)
    module = _S["modules"].get(getattr(func, "__module__", None) or "")
    file = getattr(module, "__file__", None)
    if code is None or not file:
        return False
    try:
        return _trusted_file(file) and _realpath(code.co_filename) == _realpath(file)
    except Exception:
        return False


def _describe(value):
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------------------------- baseline


def _key_objects():
    shell, kernel = _S["shell"], _S["kernel"]
    objects = [
        shell,
        kernel,
        shell.displayhook,
        shell.display_pub,
        shell.display_formatter,
        shell.events,
        shell.input_transformer_manager,
        shell.compile,
        shell.display_trap,
        shell.builtin_trap,
        shell.InteractiveTB,
        shell.SyntaxTB,
        sys.stdout,
        sys.stderr,
    ]
    formatter = shell.display_formatter
    objects += list(formatter.formatters.values())
    objects += [formatter.ipython_display_formatter, formatter.mimebundle_formatter]
    for name in ("session", "iopub_thread", "iopub_socket"):
        if getattr(kernel, name, None) is not None:
            objects.append(getattr(kernel, name))
    return objects


def _watched_classes(objects):
    classes = []
    for obj in objects:
        for cls in type(obj).__mro__:
            if cls.__module__ != "builtins" and cls not in classes:
                classes.append(cls)
    ishell = _S["modules"].get("IPython.core.interactiveshell")
    for name in ("ExecutionResult", "ExecutionInfo"):
        cls = getattr(ishell, name, None)
        if isinstance(cls, type) and cls not in classes:
            classes.append(cls)
    return classes


def _method_names(cls):
    names = set()
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if callable(value) or isinstance(value, (staticmethod, classmethod, property)):
                names.add(name)
    return names


def _plain_formatters():
    formatter = _S["shell"].display_formatter
    found = [
        ("text/plain", formatter.formatters.get("text/plain")),
        ("_ipython_display_", formatter.ipython_display_formatter),
        ("_repr_mimebundle_", formatter.mimebundle_formatter),
    ]
    return [(label, f) for label, f in found if f is not None]


def _printer_keys(formatter):
    """The printers of ``formatter`` that can change how a number or a string looks."""
    keys = {("type", t) for t in formatter.type_printers if t in NUMBER_TYPES}
    keys |= {("deferred", k) for k in formatter.deferred_printers if isinstance(k, tuple) and k[:1] == ("numpy",)}
    keys |= {("singleton", k) for k in formatter.singleton_printers}
    return keys


def _printer(formatter, key):
    table = {
        "type": formatter.type_printers,
        "deferred": formatter.deferred_printers,
        "singleton": formatter.singleton_printers,
    }[key[0]]
    return table.get(key[1], _MISSING)


_MISSING = object()


def _capture():
    shell, kernel = _S["shell"], _S["kernel"]
    pins = []  # (label, owner, attribute, baseline value); dicts and lists are kept as copies, compared by content
    for name in SHELL_ATTRIBUTES:
        pins.append((f"get_ipython().{name}", shell, name, getattr(shell, name)))
    pins.append(("the display trap's hook", shell.display_trap, "hook", shell.display_trap.hook))
    pins.append(
        (
            "the builtins IPython adds while a cell runs",
            shell.builtin_trap,
            "auto_builtins",
            dict(shell.builtin_trap.auto_builtins),
        )
    )
    for obj, label in (
        (shell.displayhook, "get_ipython().displayhook"),
        (shell.display_pub, "get_ipython().display_pub"),
    ):
        for name in ("session", "pub_socket", "shell"):
            if hasattr(obj, name):
                pins.append((f"{label}.{name}", obj, name, getattr(obj, name)))
    for name in ("shell", "session", "iopub_socket", "iopub_thread"):
        if hasattr(kernel, name):
            pins.append((f"the kernel's {name}", kernel, name, getattr(kernel, name)))
    pins.append(("the kernel's message handlers", kernel, "shell_handlers", dict(kernel.shell_handlers)))
    formatter = shell.display_formatter
    pins.append(("the display formatters", formatter, "formatters", dict(formatter.formatters)))
    pins.append(
        ("the _ipython_display_ formatter", formatter, "ipython_display_formatter", formatter.ipython_display_formatter)
    )
    pins.append(("the _repr_mimebundle_ formatter", formatter, "mimebundle_formatter", formatter.mimebundle_formatter))
    pins.append(("the active display types", formatter, "active_types", list(formatter.active_types)))
    for label, f in _plain_formatters():
        pins.append((f"the {label} formatter's switch", f, "enabled", f.enabled))
    plain = formatter.formatters.get("text/plain")
    for name in ("float_precision", "float_format", "pprint", "verbose", "max_width", "max_seq_length", "newline"):
        if plain is not None and hasattr(plain, name):
            pins.append((f"the plain-text formatter's {name}", plain, name, getattr(plain, name)))
    for name in SYS_HOOKS:
        pins.append((f"sys.{name}", sys, name, getattr(sys, name)))
    for name, value in vars(sys).items():
        if type(value).__name__ == "builtin_function_or_method" and name not in SYS_HOOKS:
            pins.append((f"sys.{name}", sys, name, value))
    pins.append(("the notebook's __builtins__", shell.user_ns, "__builtins__", shell.user_ns.get("__builtins__")))
    _S["pins"] = pins
    manager = shell.input_transformer_manager
    _S["lists"] = [
        (label, owner, name, list(getattr(owner, name)))
        for label, owner, name in (
            ("get_ipython().input_transformers_post", shell, "input_transformers_post"),
            ("get_ipython().ast_transformers", shell, "ast_transformers"),
            ("get_ipython().input_transformers_cleanup", manager, "cleanup_transforms"),
            ("the line transformers", manager, "line_transforms"),
            ("the token transformers", manager, "token_transformers"),
        )
    ]
    _S["events"] = {name: list(callbacks) for name, callbacks in shell.events.callbacks.items()}
    _S["plain_printers"] = [
        (label, f, {key: _printer(f, key) for key in _printer_keys(f)}) for label, f in _plain_formatters()
    ]
    objects = _key_objects()
    _S["instances"] = [(obj, dict(vars(obj)), _method_names(type(obj))) for obj in objects if hasattr(obj, "__dict__")]
    _S["classes"] = [(cls, dict(vars(cls))) for cls in _watched_classes(objects)]
    _S["builtins"] = dict(vars(builtins))
    _S["trace"] = (_S["gettrace"](), _S["getprofile"](), _S["thread_gettrace"](), _S["thread_getprofile"]())


def install(secret, plan):
    """Capture the baseline (call once, before any student cell); ``plan`` is a dict: ``chains`` (lists of names,
    the first a notebook name or a module, e.g. ``["np", "allclose"]``) and ``imports`` (modules the test cells
    import), both read by the grader from the test cells. Also installs the import guard
    (:class:`_NoShadowFinder`) and caps each cell's stdout and stderr at ``plan["stream_cap"]`` characters."""
    global SECRET
    SECRET = secret
    modules = sys.modules
    _S["modules"] = modules
    os_path = modules["os"].path
    _S["realpath"] = os_path.realpath
    _S["cwd"] = os_path.realpath(modules["os"].getcwd())
    _S["gettrace"], _S["settrace"] = sys.gettrace, sys.settrace
    _S["getprofile"], _S["setprofile"] = sys.getprofile, sys.setprofile
    threading = modules["threading"]
    _S["thread_gettrace"], _S["thread_settrace"] = threading.gettrace, threading.settrace
    _S["thread_getprofile"], _S["thread_setprofile"] = threading.getprofile, threading.setprofile
    _S["linecache"] = modules["linecache"].cache
    machinery = modules["importlib._bootstrap_external"]
    _S["PathFinder"] = machinery.PathFinder
    _S["shell"] = modules["IPython.core.getipython"].get_ipython()
    _S["kernel"] = _S["shell"].kernel
    _S["plan"] = plan
    # trusted places: the installation (prefixes) and the kit's packages, found without importing them
    dirs = {os_path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
    _S["trusted_path"] = [p for p in sys.path if p and not _under(os_path.realpath(p), _S["cwd"])]
    _S["base_meta_path"] = list(sys.meta_path)
    _S["base_path_hooks"] = list(sys.path_hooks)
    _S["trusted_dirs"] = sorted(dirs)
    for package in ("course", "data_loaders", "widgets"):
        spec = _find_installed(package)
        for location in (spec.submodule_search_locations or ()) if spec else ():
            dirs.add(os_path.realpath(location))
    _S["trusted_dirs"] = sorted(dirs)
    _S["shadow_findings"] = []
    _S["module_names"] = {}
    _S["chains"] = {}
    _S["marks"] = {}
    _S["outputs_before"] = None
    finder = _NoShadowFinder()
    _S["finder"] = finder
    sys.meta_path.insert(0, finder)
    cap = int(plan.get("stream_cap") or 0)
    if cap > 0:
        for stream in (sys.stdout, sys.stderr):
            _cap_stream(stream, cap)
    _capture()
    settle()
    return repr({"secret": SECRET, "ok": True})


def _cap_stream(stream, cap):
    """Keep at most ``cap`` characters of one cell's writes to ``stream`` (an ipykernel OutStream), then one note;
    a first stderr write of a cell is always kept in part (stderr in a test cell scores it 0)."""
    original = stream.write
    state = {"parent": None, "count": 0, "noted": False}

    def write(text, *args, **kwargs):
        try:  # the header of the request being answered (ipykernel's OutStream.parent_header): one per cell
            header = stream.parent_header or {}
            parent = header.get("msg_id") or (header.get("header") or {}).get("msg_id")
        except Exception:
            parent = None
        if parent != state["parent"]:
            state.update(parent=parent, count=0, noted=False)
        size = len(text) if isinstance(text, str) else 0
        room = cap - state["count"]
        state["count"] += size
        if size <= room:
            return original(text, *args, **kwargs)
        if room > 0:
            original(text[:room])
        if not state["noted"]:
            state["noted"] = True
            original(
                f"\n[grader: this cell wrote more than {cap:,} characters to {stream.name}; the rest was not kept]\n"
            )
        return size

    stream.write = write


# --------------------------------------------------------------------------------------------- trusted points


def _chain_root(name):
    if name in _S["module_names"]:
        return _S["module_names"][name]
    if name in (_S["plan"].get("imports") or ()):
        return _S["modules"].get(name)
    return None


def settle():
    """After an instructor cell (trusted code): remember the notebook names it bound to modules, and the values of
    the module attributes the test cells use (``plan["chains"]``) where not remembered yet."""
    shell = _S["shell"]
    for name, value in list(shell.user_ns.items()):
        if isinstance(value, type(sys)) and not name.startswith("_") and name not in _S["module_names"]:
            _S["module_names"][name] = value
    for chain in _S["plan"].get("chains") or ():
        obj = _chain_root(chain[0])
        label = chain[0]
        for name in chain[1:]:
            if not isinstance(obj, (type(sys), type)):
                break
            value = vars(obj).get(name, _MISSING)
            if value is _MISSING:
                break
            label = f"{label}.{name}"
            _S["chains"].setdefault((id(obj), name), (label, obj, name, value))
            obj = value
    return repr({"secret": SECRET, "ok": True})


# --------------------------------------------------------------------------------------------- diff and restore


def _same(a, b):
    """Identity, or equal content for plain values, lists, tuples and dicts (bound methods: same function and
    object)."""
    if a is b:
        return True
    if type(a) in (str, int, float, bool, type(None)) and type(a) is type(b):
        return a == b
    if type(a) in (list, tuple) and type(a) is type(b) and len(a) == len(b):
        return all(_same(x, y) for x, y in zip(a, b))
    if type(a) is dict and type(b) is dict and a.keys() == b.keys():
        return all(_same(a[k], b[k]) for k in a)
    if type(a).__name__ == "method" and type(b).__name__ == "method":
        return a.__func__ is b.__func__ and a.__self__ is b.__self__
    return False


def _put_back(owner, name, value, current):
    if type(value) is list and type(current) is list:
        current[:] = value
    elif type(value) is dict and type(current) is dict:
        current.clear()
        current.update(value)
    elif type(owner) is dict:
        owner[name] = value
    else:
        setattr(owner, name, value)


def _check_pins(note, fix, in_cell):
    shell = _S["shell"]
    for label, owner, name, value in _S["pins"]:
        if in_cell and owner is sys and name in ("displayhook", "excepthook"):
            # while a cell runs IPython installs its own hooks
            current = getattr(sys, name)
            if not (_same(current, value) or _same(current, getattr(shell, name, None))):
                note(f"sys.{name} was replaced (by {_describe(current)})")
            continue
        current = owner.get(name, _MISSING) if type(owner) is dict else getattr(owner, name, _MISSING)
        if not _same(current, value):
            note(f"{label} was changed (to {_describe(current)})")
            if fix:
                _put_back(owner, name, value, current)
    for label, owner, name, contents in _S["lists"]:
        current = getattr(owner, name, _MISSING)
        if type(current) is not list or not _same(current, contents):
            note(f"{label} were changed ({_describe(current)})")
            if fix:
                _put_back(owner, name, list(contents), current)


def _check_events(note, fix, in_cell):
    events = _S["shell"].events
    for event, base in _S["events"].items():
        callbacks = events.callbacks.get(event)
        if type(callbacks) is not list:
            note(f"the {event} event's callbacks were replaced")
            if fix:
                events.callbacks[event] = list(base)
            continue
        foreign = [cb for cb in callbacks if not any(_same(cb, b) for b in base) and not _trusted_callable(cb)]
        missing = [b for b in base if not any(_same(cb, b) for cb in callbacks)]
        if foreign:
            note(f"a {event} event callback was registered ({', '.join(_describe(cb) for cb in foreign)})")
        if missing:
            note(f"IPython's own {event} event callback was removed")
        if fix and (foreign or missing):
            callbacks[:] = missing + [cb for cb in callbacks if not any(cb is f for f in foreign)]
    for event in list(events.callbacks):
        if event not in _S["events"]:
            note(f"an event {event!r} was added")
            if fix:
                del events.callbacks[event]


def _check_printers(note, fix, in_cell):
    for label, formatter, printers in _S["plain_printers"]:
        tables = {
            "type": formatter.type_printers,
            "deferred": formatter.deferred_printers,
            "singleton": formatter.singleton_printers,
        }
        for key in set(printers) | _printer_keys(formatter):
            base, current = printers.get(key, _MISSING), _printer(formatter, key)
            if current is not base:
                what = key[1].__name__ if isinstance(key[1], type) else str(key[1])
                note(f"the {label} printer for {what} was changed (to {_describe(current)})")
                if fix:
                    if base is _MISSING:
                        tables[key[0]].pop(key[1], None)
                    else:
                        tables[key[0]][key[1]] = base


def _check_instances(note, fix, in_cell):
    for obj, base, methods in _S["instances"]:
        current = vars(obj)
        for name in [n for n in current if n in methods]:
            value = current[name]
            if name in base and _same(value, base[name]):
                continue
            if in_cell and name == "write" and (obj is sys.stdout or obj is sys.stderr):
                continue  # IPython tees a cell's output through an instance `write` while the cell runs
            note(f"{type(obj).__name__}.{name} was replaced on the running object (by {_describe(value)})")
            if fix:
                if name in base:
                    setattr(obj, name, base[name])
                else:
                    delattr(obj, name)


def _check_classes(note, fix, in_cell):
    skip = ("__dict__", "__weakref__", "__doc__", "__abstractmethods__", "_abc_impl")
    for cls, base in _S["classes"]:
        current = vars(cls)
        for name in set(base) | set(current):
            a, b = current.get(name, _MISSING), base.get(name, _MISSING)
            if a is b or name in skip:
                continue
            if b is _MISSING and not (callable(a) or isinstance(a, (staticmethod, classmethod, property))):
                continue  # a value a library caches on its class
            note(f"{cls.__module__}.{cls.__qualname__}.{name} was {'added' if b is _MISSING else 'replaced'}")
            if fix:
                if b is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, b)


def _check_builtins(note, fix, in_cell):
    base, live = _S["builtins"], vars(builtins)
    for name, value in base.items():
        if name in TRAP_NAMES or (name.startswith("_") and name != "__import__") or (in_cell and name in RUN_NAMES):
            continue
        current = live.get(name, _MISSING)
        if current is not value:
            note(f"builtins.{name} was {'deleted' if current is _MISSING else 'replaced'}")
            if fix:
                live[name] = value
    user_ns = _S["shell"].user_ns
    for name in VERDICT_BUILTINS:
        value = user_ns.get(name, _MISSING)
        if value is _MISSING or value is base.get(name) or not callable(value) or _library_callable(value, name):
            continue
        note(f"the notebook defines its own {name} ({_describe(value)}), hiding the builtin the tests use")
        if fix:
            del user_ns[name]


def _check_names(note, fix, in_cell):
    user_ns = _S["shell"].user_ns
    for name, module in _S["module_names"].items():
        current = user_ns.get(name, _MISSING)
        if current is module:
            continue
        if not _genuine_module(current):
            note(f"the notebook name {name} (the module {module.__name__}) was rebound to {_describe(current)}")
        if fix:
            user_ns[name] = module
    for key, (label, parent, name, value) in list(_S["chains"].items()):
        current = vars(parent).get(name, _MISSING)
        if current is value:
            continue
        if isinstance(value, type(sys)) and _genuine_module(current):
            _S["chains"][key] = (label, parent, name, current)  # a lazily loaded module took its place
            continue
        note(f"{label} was replaced (by {_describe(current)})")
        if fix:
            setattr(parent, name, value)
    for module_name in _S["plan"].get("imports") or ():
        module = _S["modules"].get(module_name)
        if module is not None and not _genuine_module(module):
            note(f"sys.modules[{module_name!r}] is not the installed module ({_describe(module)})")
            if fix:
                del _S["modules"][module_name]


def _library_object(obj):
    """True for an object (or class) whose class an installed library defines (an import finder of setuptools or
    of the standard library), False for one the notebook defined."""
    cls = obj if isinstance(obj, type) else type(obj)
    module = _S["modules"].get(getattr(cls, "__module__", None) or "")
    return module is not None and _genuine_module(module) and vars(module).get(cls.__name__) is cls


def _check_imports(note, fix, in_cell):
    finder = _S["finder"]
    if not any(f is finder for f in sys.meta_path):
        note("the import guard was removed from sys.meta_path")
    if fix and (not sys.meta_path or sys.meta_path[0] is not finder):
        sys.meta_path[:] = [finder] + [f for f in sys.meta_path if f is not finder]
    for base in _S["base_meta_path"]:
        if not any(f is base for f in sys.meta_path):
            note(f"the import finder {_describe(base)} was removed from sys.meta_path")
            if fix:
                sys.meta_path.append(base)
    for extra in [f for f in sys.meta_path if f is not finder and not any(f is b for b in _S["base_meta_path"])]:
        if not _library_object(extra):
            note(f"an import finder of the notebook's own was added to sys.meta_path ({_describe(extra)})")
            if fix:
                sys.meta_path.remove(extra)
    for hook in [
        h
        for h in sys.path_hooks
        if not any(h is b for b in _S["base_path_hooks"]) and not _library_object(h) and not _trusted_callable(h)
    ]:
        note(f"an import hook of the notebook's own was added to sys.path_hooks ({_describe(hook)})")
        if fix:
            sys.path_hooks.remove(hook)
    cache = sys.path_importer_cache
    for entry, cached in [(k, v) for k, v in list(cache.items()) if v is not None and not _library_object(v)]:
        note(f"the import finder cached for {entry} is the notebook's own ({_describe(cached)})")
        if fix:
            cache.pop(entry, None)


def _check_trace(note, fix, in_cell):
    now = (_S["gettrace"](), _S["getprofile"](), _S["thread_gettrace"](), _S["thread_getprofile"]())
    setters = (_S["settrace"], _S["setprofile"], _S["thread_settrace"], _S["thread_setprofile"])
    for what, current, base, setter in zip(
        ("sys.settrace", "sys.setprofile", "threading.settrace", "threading.setprofile"), now, _S["trace"], setters
    ):
        if current is not base:
            note(f"a trace function was installed with {what} ({_describe(current)})")
            if fix:
                setter(base)


_CHECKS = (
    _check_pins,
    _check_events,
    _check_printers,
    _check_instances,
    _check_classes,
    _check_builtins,
    _check_names,
    _check_imports,
    _check_trace,
)


def _diff(fix, in_cell=False):
    """(tampering, notes): what differs from the baseline, as sentences (with ``fix``, the baseline is put back),
    and what the guard itself could not do or undid on its own (an import it redirected)."""
    found, notes = [], []
    for check_part in _CHECKS:
        try:
            check_part(found.append, fix, in_cell)
        except Exception as err:  # a guard that fails must not fail an honest test: say so, for review
            notes.append(
                f"the grading guard's {check_part.__name__[7:]} check failed ({type(err).__name__}: {_describe(err)})"
            )
    if _S["shadow_findings"]:
        notes += _S["shadow_findings"]
        if fix:
            _S["shadow_findings"] = []
    return found, notes


def restore():
    """Before a graded test cell: put the baseline back.

    Returns ``repr({"secret", "undone": [sentences], "notes": [sentences]})``.
    """
    undone, notes = _diff(fix=True)
    history = getattr(_S["shell"].history_manager, "outputs", None)
    _S["outputs_before"] = {k: len(v) for k, v in history.items()} if isinstance(history, dict) else None
    return repr({"secret": SECRET, "undone": undone, "notes": notes})


def mark(nonce):
    """Called by the test cell itself, just before its final expression: records that the cell got there and what
    differed from the baseline at that moment (a trace function, a custom exception handler, a forged display
    hook installed by a function the test called)."""
    _S["marks"][nonce] = _diff(fix=False, in_cell=True)


def check(nonce, hidden):
    """After a graded test cell: ``repr({"secret", "reached": bool, "in_cell": [sentences], "notes": [...]})``
    (``in_cell``: tampering seen while the cell ran or left by it); restores the baseline, and for a cell with
    ``hidden`` tests forgets its source (``linecache``) and its outputs in IPython's history."""
    reached = nonce in _S["marks"]
    in_cell, notes = _S["marks"].pop(nonce, ([], []))
    after, after_notes = _diff(fix=True)
    in_cell = list(in_cell) + [s for s in after if s not in in_cell]
    notes = list(notes) + [s for s in after_notes if s not in notes]
    if hidden:
        cache = _S["linecache"]
        for key in [
            k
            for k, entry in list(cache.items())
            if len(entry) > 2 and type(entry[2]) is list and any(nonce in line for line in entry[2])
        ]:
            cache.pop(key, None)
        history = getattr(_S["shell"].history_manager, "outputs", None)
        before = _S["outputs_before"]
        if isinstance(history, dict) and before is not None:
            for key in list(history):
                if key not in before:
                    del history[key]
                else:
                    del history[key][before[key] :]
    return repr({"secret": SECRET, "reached": reached, "in_cell": in_cell, "notes": notes})
