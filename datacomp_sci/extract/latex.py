"""LaTeX figure-caption extraction for arXiv source projects.

``extract_latex(files, paper_id)`` takes a whole unpacked project (path -> bytes) and
returns one :class:`~datacomp_sci.core.schema.FigurePair` per figure (or captioned panel), in
document order, with every skip counted.

Pipeline, per main file (a ``.tex`` with ``\\documentclass``/``\\documentstyle`` that no
other file inputs):

1. **Read** each ``.tex`` as UTF-8, falling back to Latin-1, and strip comments the way
   TeX does (``\\%`` is a percent sign, ``%`` eats the end of line *and* the next line's
   leading blanks), dropping ``verbatim``/``comment`` environments and ``\\iffalse`` blocks.
2. **Expand** (:class:`_Expander`): one left-to-right pass that splices in
   ``\\input``/``\\include``/``\\subfile``/``\\import``/``\\subimport`` files and expands
   user macros (``\\newcommand`` & co., ``\\def``, ``\\newenvironment``) with their
   arguments, bounded by an expansion count, a nesting depth and ``max_tex_bytes``.
3. **Find figures** (:func:`_figures`): an environment tree built from the
   ``\\begin``/``\\end`` tokens gives the floats (``figure``, ``figure*``, ``wrapfigure``,
   ``SCfigure``...), sub-figure environments and captioned minipages; ``\\captionof`` units
   outside floats come from their innermost enclosing environment.
4. **Captions and mentions** go to plain text with pylatexenc's ``LatexNodes2Text`` and
   custom macro specs (references -> ``ref_token``, citations -> ``cit_token``).

Why a hand-written scanner and not a full parser (TexSoup, or pylatexenc's walker over the
whole document): real arXiv sources are frequently not well-formed (unbalanced braces,
environments closed in another file, macros that open an environment), and those parsers
either raise or silently re-nest the rest of the document. The scanner only needs three
things, each done in linear time with simple regexes (no nested quantifiers, so no
catastrophic backtracking): find the next control sequence, read a brace/bracket argument,
and pair ``\\begin``/``\\end`` tokens with a stack. Malformed parts therefore stay local.
pylatexenc is used only on small, already isolated strings (captions, sentences), where
its tolerant mode and Unicode tables are exactly what is wanted.

Graphic resolution follows pdfTeX's graphicx (``pdftex.def``): a name with a known
extension is used as is; otherwise the extensions are tried in ``\\Gin@extensions`` order
``.pdf .png .jpg .mps .jpeg .jbig2 .jb2 .PDF .PNG .JPG .JPEG .JBIG2 .JB2`` followed by
``.eps`` (appended by ``epstopdf-base``, which graphicx loads under pdfTeX), then ``.ps``
``.EPS`` ``.PS`` ``.gif`` ``.GIF`` (what ``latex``+dvips projects and old arXiv uploads
use). A ``\\DeclareGraphicsExtensions`` in the source replaces that list. Each name is tried
relative to the main file's directory (or the ``\\import`` directory), then each
``\\graphicspath`` entry. ``x.eps`` missing but ``x-eps-converted-to.pdf`` present (what
epstopdf writes) resolves to the latter. A unique case-insensitive match is accepted and
counted as ``graphic_case_mismatch_resolved``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from datacomp_sci.core.schema import FigurePair, PaperPairs
from datacomp_sci.extract.sentences import PUNCT_END, is_sentence_end

__all__ = ["LatexOptions", "extract_latex", "latex_to_text", "strip_comments", "decode_tex",
           "GRAPHIC_EXTENSIONS", "IMAGE_FORMATS"]


@dataclass(frozen=True)
class LatexOptions:
    keep_multi_panel: bool = False  # multi-graphic figure w/o sub-captions: keep each panel
    ref_token: str = "<ref>"
    cit_token: str = "<cit.>"
    max_tex_bytes: int = 20_000_000  # bound on expanded source per paper (and on any one file)
    max_expansions: int = 100_000  # user-macro expansions per main file
    max_depth: int = 200  # nested macro / input frames
    max_expansion_bytes: int = 50_000_000  # macro text produced by expansions, per main file
    max_inputs: int = 2_000  # \input/\include splices per main file
    max_main_files: int = 100  # main files (\documentclass, not input by another) per paper


REF_MACROS = ("ref", "autoref", "cref", "Cref", "eqref", "pageref", "subref", "vref", "Vref",
              "nameref", "labelcref", "crefrange", "Crefrange", "autopageref")
CITE_MACROS = ("cite", "citep", "citet", "citealp", "citealt", "citeauthor", "citeyear",
               "citeyearpar", "Citep", "Citet", "Citealp", "Citealt", "Citeauthor", "citenum",
               "parencite", "textcite", "autocite", "footcite", "smartcite", "supercite",
               "nocite", "citetext", "citeNP", "shortcite")

TEX_SUFFIXES = (".tex", ".ltx", ".latex")
GRAPHIC_EXTENSIONS: tuple[str, ...] = (
    ".pdf", ".png", ".jpg", ".mps", ".jpeg", ".jbig2", ".jb2",
    ".PDF", ".PNG", ".JPG", ".JPEG", ".JBIG2", ".JB2",
    ".eps", ".ps", ".EPS", ".PS", ".gif", ".GIF",
)
# formats the image stage turns into pixels (the paper's list); others are skipped
IMAGE_FORMATS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".pdf", ".eps", ".ps"})
FLOAT_ENVS = frozenset({
    "figure", "figure*", "wrapfigure", "wrapfigure*", "SCfigure", "SCfigure*",
    "sidewaysfigure", "sidewaysfigure*", "floatingfigure", "figwindow",
})
SUBFIG_ENVS = frozenset({"subfigure", "subfigure*"})
INPUT_CMDS = frozenset({"input", "include", "subfile", "import", "subimport", "inputfrom",
                        "subinputfrom", "includefrom", "subincludefrom"})
DEF_CMDS = frozenset({"newcommand", "renewcommand", "providecommand", "DeclareRobustCommand"})
TEXDEF_CMDS = frozenset({"def", "gdef", "edef", "xdef"})
ENVDEF_CMDS = frozenset({"newenvironment", "renewenvironment"})
# never let a user definition replace what this extractor itself recognises
PROTECTED = frozenset({
    "begin", "end", "caption", "captionof", "includegraphics", "label", "ref", "autoref",
    "cref", "Cref", "eqref", "pageref", "subref", "input", "include", "subfile", "import",
    "subimport", "epsfig", "psfig", "epsfbox", "epsffile", "plotone", "plottwo", "subfigure",
    "subfloat", "subcaptionbox", "graphicspath", "DeclareGraphicsExtensions", "documentclass",
    "cite", "def", "newcommand", "renewcommand", "providecommand", "usepackage",
    "section", "subsection", "subsubsection", "paragraph", "item", "DCSIMPORTDIR",
}) | DEF_CMDS | TEXDEF_CMDS | ENVDEF_CMDS
PROTECTED |= frozenset(REF_MACROS) | frozenset(CITE_MACROS)
PROTECTED_ENVS = FLOAT_ENVS | SUBFIG_ENVS | {"document", "minipage", "verbatim", "comment"}
_CS = re.compile(r"\\([A-Za-z]+|.)", re.S)
_BACKSLASH = re.compile(r"\\")
_BRACES = re.compile(r"[\\{}]")
_BRACKETS = re.compile(r"[\\{}\[\]]")
_WS = re.compile(r"\s*")
_BEGIN_END = re.compile(r"\\(begin|end)[ \t\n]*\{([^{}\\]{1,80})\}")


# --- reading and comments -------------------------------------------------------------

def decode_tex(data: bytes) -> str:
    """UTF-8 (BOM tolerated), else Latin-1 (which decodes any byte string)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_COMMENT_SCAN = re.compile(r"\\(?:verb\*?|begin[ \t]*\{(?:verbatim\*?|comment|lstlisting|minted)\}|iffalse(?![A-Za-z])|.)|%", re.S)
_VERB_END = {"verbatim": r"\end{verbatim}", "verbatim*": r"\end{verbatim*}",
             "comment": r"\end{comment}", "lstlisting": r"\end{lstlisting}",
             "minted": r"\end{minted}"}
_IF_TOKENS = re.compile(r"\\(if[A-Za-z]*|fi)(?![A-Za-z])|%[^\n]*")


def strip_comments(text: str) -> str:
    """Remove TeX comments, verbatim-like environments and ``\\iffalse ... \\fi`` blocks.

    ``\\%`` stays; ``%`` removes the rest of its line, the line end and the next line's
    leading blanks (TeX joins the lines). ``\\verb|..%..|`` is left alone.
    """
    out: list[str] = []
    pos, n = 0, len(text)
    while pos < n:
        m = _COMMENT_SCAN.search(text, pos)
        if m is None:
            out.append(text[pos:])
            break
        tok = m.group(0)
        if tok == "%":
            out.append(text[pos:m.start()])
            nl = text.find("\n", m.end())
            if nl < 0:
                break
            pos = nl + 1
            while pos < n and text[pos] in " \t":
                pos += 1
            continue
        if tok.startswith("\\verb"):
            end = _verb_end(text, m.end())
            out.append(text[pos:end])
            pos = end
        elif tok.startswith("\\begin"):
            out.append(text[pos:m.start()])
            env = tok[tok.index("{") + 1:-1]
            stop = text.find(_VERB_END[env], m.end())
            pos = n if stop < 0 else stop + len(_VERB_END[env])
        elif tok == "\\iffalse":
            out.append(text[pos:m.start()])
            pos = _skip_iffalse(text, m.end())
        else:
            out.append(text[pos:m.end()])
            pos = m.end()
    return "".join(out)


def _verb_end(text: str, pos: int) -> int:
    if pos >= len(text) or text[pos].isalpha() or text[pos].isspace():
        return pos
    stop = text.find(text[pos], pos + 1, pos + 2000)
    nl = text.find("\n", pos + 1, pos + 2000)
    if stop < 0 or (0 <= nl < stop):
        return pos + 1
    return stop + 1


def _skip_iffalse(text: str, pos: int) -> int:
    """Position after the ``\\fi`` that closes an ``\\iffalse`` (nesting-aware)."""
    depth = 1
    for m in _IF_TOKENS.finditer(text, pos):
        tok = m.group(1)
        if tok is None:
            continue
        depth += -1 if tok == "fi" else 1
        if depth == 0:
            return m.end()
    return len(text)


# --- argument reading -------------------------------------------------------------------

def _skip_ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()


def _read_group(text: str, pos: int, end: int | None = None) -> tuple[str, int] | None:
    """``{...}`` at ``pos`` (after blanks): (content, position after). Unclosed: to ``end``."""
    end = len(text) if end is None else end
    pos = _skip_ws(text, pos)
    if pos >= end or text[pos] != "{":
        return None
    depth, i = 0, pos
    while True:
        m = _BRACES.search(text, i, end)
        if m is None:
            return text[pos + 1:end], end
        c = m.group(0)
        if c == "\\":
            i = m.end() + 1
            continue
        depth += 1 if c == "{" else -1
        i = m.end()
        if depth == 0:
            return text[pos + 1:i - 1], i


def _read_optional(text: str, pos: int, end: int | None = None) -> tuple[str, int] | None:
    """``[...]`` at ``pos`` (after blanks), brackets inside braces ignored."""
    end = len(text) if end is None else end
    pos = _skip_ws(text, pos)
    if pos >= end or text[pos] != "[":
        return None
    depth, i = 0, pos + 1
    while True:
        m = _BRACKETS.search(text, i, end)
        if m is None:
            return None
        c = m.group(0)
        i = m.end()
        if c == "\\":
            i += 1
        elif c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        elif c == "]" and depth == 0:
            return text[pos + 1:i - 1], i


def _read_optionals(text: str, pos: int, end: int | None = None,
                    n: int = 2) -> tuple[list[str], int]:
    """The contents of up to ``n`` ``[...]`` arguments (e.g. ``\\includegraphics[..][..]``)
    and the position after them."""
    found = []
    for _ in range(n):
        o = _read_optional(text, pos, end)
        if o is None:
            break
        found.append(o[0])
        pos = o[1]
    return found, pos


def _skip_optionals(text: str, pos: int, end: int | None = None, n: int = 2) -> int:
    """Position after up to ``n`` ``[...]`` arguments."""
    return _read_optionals(text, pos, end, n)[1]


def _read_arg(text: str, pos: int, end: int | None = None) -> tuple[str, int] | None:
    """An undelimited TeX argument: a group's content, one control sequence or one char."""
    end = len(text) if end is None else end
    pos = _skip_ws(text, pos)
    if pos >= end:
        return None
    if text[pos] == "{":
        return _read_group(text, pos, end)
    if text[pos] == "}":
        return None
    if text[pos] == "\\":
        m = _CS.match(text, pos)
        return m.group(0), m.end()
    return text[pos], pos + 1


def _star(text: str, pos: int) -> int:
    p = _skip_ws(text, pos)
    return p + 1 if p < len(text) and text[p] == "*" else pos


# --- expansion: inputs and user macros --------------------------------------------------

@dataclass
class _Macro:
    nargs: int
    default: str | None  # default of an optional first argument
    body: str


@dataclass
class _Env:
    nargs: int
    default: str | None
    begin: str
    end: str


@dataclass
class _Frame:
    text: str
    pos: int
    file: str | None = None  # set for frames that read a file
    import_dir: str | None = None


class _Budget(Exception):
    """Raised when the expanded text would exceed ``max_tex_bytes``."""


@dataclass
class _Project:
    files: Mapping[str, bytes]
    options: LatexOptions
    result: PaperPairs
    texts: dict[str, str | None] = field(default_factory=dict)
    expanded: int = 0  # characters of expanded source produced so far (all main files)
    lower: dict[str, list[str]] | None = None  # case-insensitive path index, built on demand

    def tex(self, path: str) -> str | None:
        """Comment-stripped text of a .tex file (None when too large: counted once)."""
        if path not in self.texts:
            data = self.files[path]
            if len(data) > self.options.max_tex_bytes:
                self.result.skip("tex_too_large", path, f"{len(data)} bytes")
                self.texts[path] = None
            else:
                self.texts[path] = strip_comments(decode_tex(data))
        return self.texts[path]

    def find_tex(self, name: str, bases: list[str]) -> str | None:
        name = name.strip().strip('"').strip()
        if not name:
            return None
        for base in bases:
            stem = _join(base, name)
            if stem is None:
                continue
            for cand in (stem + ".tex", stem) if not stem.endswith(".tex") else (stem,):
                if cand in self.files:
                    return cand
        return None


def _join(base: str, name: str) -> str | None:
    """``base/name`` normalised; None when it leaves the project root."""
    path = posixpath.normpath(posixpath.join(base, name)) if base else posixpath.normpath(name)
    if path.startswith("../") or path == ".." or path.startswith("/"):
        return None
    return path


def _read_arg_spec(fr: _Frame) -> tuple[int, str | None]:
    """``[nargs][default]`` after ``\\newcommand{\\x}`` or ``\\newenvironment{x}``."""
    nargs, default = 0, None
    o = _read_optional(fr.text, fr.pos)
    if o is not None:
        fr.pos = o[1]
        nargs = int(o[0].strip()) if o[0].strip().isdigit() else 0
        d = _read_optional(fr.text, fr.pos)
        if d is not None:
            fr.pos, default = d[1], d[0]
    return nargs, default


class _Expander:
    """One pass over a main file that splices inputs and expands user macros."""

    def __init__(self, project: _Project, main: str):
        self.p = project
        self.opt = project.options
        self.main_dir = posixpath.dirname(main)
        self.macros: dict[str, _Macro] = {}
        self.envs: dict[str, _Env] = {}
        self.out: list[str] = []
        self.expansions = 0
        self.work = 0  # characters of macro text produced by expansions
        self.inputs = 0
        self.limit_hit = False
        self.sty_mode = False
        self.loaded_sty: set[str] = set()
        self.frames = [_Frame(project.tex(main) or "", 0, file=main)]

    # -- output ----------------------------------------------------------------
    def emit(self, s: str) -> None:
        self.p.expanded += len(s)
        if self.p.expanded > self.opt.max_tex_bytes:
            raise _Budget
        self.out.append(s)

    def run(self) -> str:
        try:
            self._loop()
        except _Budget:
            self.p.result.skip("tex_too_large", self.frames[0].file,
                               f"expanded source over {self.opt.max_tex_bytes} bytes")
        return "".join(self.out)

    def _loop(self) -> None:
        while self.frames:
            fr = self.frames[-1]
            m = _BACKSLASH.search(fr.text, fr.pos)
            if m is None:
                self.emit(fr.text[fr.pos:])
                self.frames.pop()
                continue
            self.emit(fr.text[fr.pos:m.start()])
            cs = _CS.match(fr.text, m.start())
            if cs is None:  # a lone backslash at the very end
                self.emit("\\")
                fr.pos = len(fr.text)
                continue
            fr.pos = cs.end()
            self._control(fr, cs.group(1), cs.group(0))

    def _control(self, fr: _Frame, name: str, raw: str) -> None:
        text = fr.text
        if name in INPUT_CMDS and not text.startswith("@", fr.pos):
            self._input(fr, name)
        elif name in DEF_CMDS:
            self._newcommand(fr, name)
        elif name in TEXDEF_CMDS:
            self._def(fr)
        elif name in ENVDEF_CMDS:
            self._newenvironment(fr)
        elif name in ("usepackage", "RequirePackage"):
            self.emit(raw)
            self._usepackage(fr)
        elif name == "let":
            self._let(fr)
        elif name == "endinput" and fr.file is not None:
            fr.pos = len(text)
        elif name in ("begin", "end") and self.envs:
            self._user_env(fr, name, raw)
        elif name in self.macros and not self.limit_hit:
            self._expand(fr, name)
        else:
            self.emit(raw)

    # -- inputs ----------------------------------------------------------------
    def _bases(self) -> list[str]:
        bases = []
        for f in reversed(self.frames):
            if f.import_dir is not None:
                bases.append(f.import_dir)
                break
        bases.append(self.main_dir)
        for f in reversed(self.frames):  # lenient: the including file's own directory
            if f.file is not None:
                bases.append(posixpath.dirname(f.file))
                break
        return list(dict.fromkeys(bases))

    def _input(self, fr: _Frame, name: str) -> None:
        text, import_dir = fr.text, None
        if name in ("import", "subimport", "inputfrom", "subinputfrom", "includefrom",
                    "subincludefrom"):
            fr.pos = _star(text, fr.pos)
            d = _read_group(text, fr.pos)
            if d is None:
                return
            fr.pos = d[1]
            cur = self._bases()[0]
            base = d[0].strip()
            import_dir = _join(cur if name.startswith("sub") else "", base) or ""
        arg = _read_group(text, fr.pos)
        if arg is None and name == "input":  # TeX primitive syntax: \input file
            m = re.compile(r"[ \t]*([^\s{}\\]+)").match(text, fr.pos)
            arg = (m.group(1), m.end()) if m else None
        if arg is None:
            return
        fr.pos = arg[1]
        target = arg[0]
        bases = [import_dir] if import_dir is not None else self._bases()
        path = self.p.find_tex(target, bases)
        if path is None:
            self.p.result.skip("input_not_found", target.strip(), f"\\{name}")
            return
        if any(f.file == path for f in self.frames):
            self.p.result.skip("input_cycle", path, f"\\{name} inside its own input chain")
            return
        if len(self.frames) >= self.opt.max_depth:
            self.p.result.skip("input_too_deep", path)
            return
        if self.inputs >= self.opt.max_inputs:
            if self.inputs == self.opt.max_inputs:  # counted once per main file
                self.p.result.skip("input_limit", self.frames[0].file,
                                   f"more than {self.opt.max_inputs} inputs spliced")
            self.inputs = self.opt.max_inputs + 1
            return
        self.inputs += 1
        body = self.p.tex(path)
        if body is None:
            return
        body = _document_body(body) if "\\begin{document}" in body else body
        if name in ("include",):
            body = body + "\n\n"
        self._pop_exhausted()
        idir = import_dir if import_dir is not None else None
        if idir is not None:
            self.emit(f"\\DCSIMPORTDIR{{{idir}}}")
            self.frames.append(_Frame(f"\\DCSIMPORTDIR{{{self._bases()[0]}}}", 0))
        self.frames.append(_Frame(body, 0, file=path, import_dir=idir))

    def _usepackage(self, fr: _Frame) -> None:
        """Take the plain user macros of packages shipped in the project (``x.sty``).

        Only ``\\newcommand``-style and ``\\def`` definitions whose body has no ``@``
        (internal code) are kept: a local copy of a real package (natbib.sty...) must not
        replace the macros this extractor relies on.
        """
        o = _read_optional(fr.text, fr.pos)
        g = _read_group(fr.text, o[1] if o else fr.pos)
        if g is None:
            return
        for name in g[0].split(","):
            path = self.p.find_tex(name.strip() + ".sty", [self.main_dir])
            text = self.p.tex(path) if path else None
            if text is None or path in self.loaded_sty:
                continue
            self.loaded_sty.add(path)
            self._definitions_only(text)

    def _definitions_only(self, text: str) -> None:
        frame = _Frame(text, 0)
        pat = re.compile(r"\\(newcommand|renewcommand|providecommand|DeclareRobustCommand|"
                         r"def|gdef|newenvironment|renewenvironment)(?![A-Za-z@])")
        self.sty_mode = True
        try:
            while True:
                m = pat.search(text, frame.pos)
                if m is None:
                    break
                frame.pos = m.end()
                self._control(frame, m.group(1), m.group(0))
        finally:
            self.sty_mode = False

    def _pop_exhausted(self) -> None:
        while len(self.frames) > 1 and self.frames[-1].pos >= len(self.frames[-1].text) \
                and self.frames[-1].file is None:
            self.frames.pop()

    # -- definitions -----------------------------------------------------------
    def _macro_name(self, fr: _Frame) -> str | None:
        fr.pos = _star(fr.text, fr.pos)
        arg = _read_arg(fr.text, fr.pos)
        if arg is None:
            return None
        fr.pos = arg[1]
        m = _CS.fullmatch(arg[0].strip())
        return m.group(1) if m else None

    def _newcommand(self, fr: _Frame, cmd: str) -> None:
        name = self._macro_name(fr)
        nargs, default = _read_arg_spec(fr)
        body = _read_arg(fr.text, fr.pos)
        if body is None:
            return
        fr.pos = body[1]
        if name is None or name in PROTECTED or not 0 <= nargs <= 9:
            return
        if cmd == "providecommand" and name in self.macros or self.sty_mode and "@" in body[0]:
            return
        self.macros[name] = _Macro(nargs, default, body[0])

    def _def(self, fr: _Frame) -> None:
        m = _CS.match(fr.text, _skip_ws(fr.text, fr.pos))
        if m is None:
            return
        fr.pos = m.end()
        brace = fr.text.find("{", fr.pos, fr.pos + 200)
        if brace < 0:
            return
        params = fr.text[fr.pos:brace]
        body = _read_group(fr.text, brace)
        if body is None:
            return
        fr.pos = body[1]
        name = m.group(1)
        if not re.fullmatch(r"(?:#[1-9])*", params.strip()) or name in PROTECTED \
                or self.sty_mode and "@" in body[0]:
            return  # delimited parameters are not supported: leave the macro undefined
        self.macros[name] = _Macro(params.count("#"), None, body[0])

    def _let(self, fr: _Frame) -> None:
        m = re.compile(r"\s*\\([A-Za-z]+|.)\s*=?\s*(\\([A-Za-z]+|.)|.)").match(fr.text, fr.pos)
        if m is None:
            return
        fr.pos = m.end()
        name, src = m.group(1), m.group(3)
        if name in PROTECTED:
            return
        if src is not None and src in self.macros:
            self.macros[name] = self.macros[src]
        else:
            self.macros.pop(name, None)

    def _newenvironment(self, fr: _Frame) -> None:
        fr.pos = _star(fr.text, fr.pos)
        name = _read_group(fr.text, fr.pos)
        if name is None:
            return
        fr.pos = name[1]
        nargs, default = _read_arg_spec(fr)
        begin = _read_group(fr.text, fr.pos)
        if begin is None:
            return
        end = _read_group(fr.text, begin[1])
        if end is None:
            return
        fr.pos = end[1]
        env = name[0].strip()
        if self.sty_mode and "@" in begin[0] + end[0]:
            return
        if env not in PROTECTED_ENVS and 0 <= nargs <= 9:
            self.envs[env] = _Env(nargs, default, begin[0], end[0])

    # -- expansion -------------------------------------------------------------
    def _budget_ok(self) -> bool:
        if self.expansions >= self.opt.max_expansions or len(self.frames) >= self.opt.max_depth:
            self.limit_hit = True
            self.p.result.skip("macro_expansion_limit", self.frames[0].file,
                               f"{self.expansions} expansions, depth {len(self.frames)}")
            return False
        self.expansions += 1
        return True

    def _read_args(self, nargs: int, default: str | None) -> list[str] | None:
        args: list[str] = []
        for i in range(nargs):
            self._pop_exhausted()
            fr = self.frames[-1]
            if i == 0 and default is not None:
                o = _read_optional(fr.text, fr.pos)
                if o is None:
                    args.append(default)
                else:
                    fr.pos = o[1]
                    args.append(o[0])
                continue
            a = _read_arg(fr.text, fr.pos)
            if a is None:
                return None
            fr.pos = a[1]
            args.append(a[0])
        return args

    def _expand(self, fr: _Frame, name: str) -> None:
        mac = self.macros[name]
        if name[0].isalpha():  # TeX skips blanks (and one line end) after a control word
            fr.pos = _SPACES_AFTER_WORD.match(fr.text, fr.pos).end()
        if not self._budget_ok():
            self.emit("\\" + name)
            return
        args = self._read_args(mac.nargs, mac.default)
        if args is None:
            return
        if self._work_ok(mac.body, args):
            self._push(_substitute(mac.body, args))

    def _work_ok(self, body: str, args: list[str]) -> bool:
        """Charge the size of a substitution before making it: argument-doubling recursion
        (``\\def\\x#1{\\x{#1#1}}``) grows exponentially within the expansion count."""
        size = len(body)
        if args and "#" in body:
            size += sum(len(args[int(k) - 1]) for k in _PARAM_NUM.findall(body)
                        if int(k) <= len(args))
        self.work += size
        if self.work <= self.opt.max_expansion_bytes:
            return True
        self.limit_hit = True
        self.p.result.skip("macro_expansion_limit", self.frames[0].file,
                           f"expansions produced over {self.opt.max_expansion_bytes} characters")
        return False

    def _push(self, text: str) -> None:
        if not text:
            return
        self._pop_exhausted()
        self.frames.append(_Frame(text, 0))

    def _user_env(self, fr: _Frame, which: str, raw: str) -> None:
        g = _read_group(fr.text, fr.pos)
        env = self.envs.get(g[0].strip()) if g else None
        if env is None or self.limit_hit or not self._budget_ok():
            self.emit(raw)
            return
        fr.pos = g[1]
        if which == "end":
            if self._work_ok(env.end, []):
                self._push(env.end + " ")
            return
        args = self._read_args(env.nargs, env.default) or []
        if self._work_ok(env.begin, args):
            self._push(_substitute(env.begin, args) + " ")


_SPACES_AFTER_WORD = re.compile(r"[ \t]*(?:\n[ \t]*)?")
_PARAM = re.compile(r"##|#([1-9])")
_PARAM_NUM = re.compile(r"(?<!#)#([1-9])")


def _substitute(body: str, args: list[str]) -> str:
    def repl(m: re.Match) -> str:
        if m.group(1) is None:
            return "#"
        k = int(m.group(1)) - 1
        return args[k] if k < len(args) else ""

    return _PARAM.sub(repl, body)


def _document_body(text: str) -> str:
    i = text.find("\\begin{document}")
    j = text.rfind("\\end{document}")
    start = i + len("\\begin{document}")
    return text[start:j] if j > start else text[start:]


# --- main files ---------------------------------------------------------------------------

_DOCCLASS = re.compile(r"\\document(?:class|style)(?![A-Za-z])")
_INPUT_REF = re.compile(
    r"\\(input|include|subfile|import|subimport)(?![A-Za-z@])[ \t]*(?:\{([^{}]*)\}|([^\s{}\\]+))"
    r"(?:[ \t]*\{([^{}]*)\})?")


def _main_files(project: _Project) -> list[str]:
    texs = sorted(p for p in project.files if p.endswith(TEX_SUFFIXES))
    mains, referenced = [], set()
    for path in texs:
        text = project.tex(path)
        if text is None:
            continue
        if _DOCCLASS.search(text):
            mains.append(path)
        here = posixpath.dirname(path)
        for m in _INPUT_REF.finditer(text):
            cmd, a, b, c = m.groups()
            if cmd in ("import", "subimport"):
                target = (a or "").strip().rstrip("/") + "/" + (c or "").strip()
            else:
                target = a if a is not None else b
            found = project.find_tex(target or "", [here, ""])
            if found is not None and found != path:
                referenced.add(found)
    top = [p for p in mains if p not in referenced] or mains

    def order(p: str) -> tuple:
        secondary = re.search(r"supp|appendix|response|rebuttal|cover|letter", p, re.I)
        return (secondary is not None, "\\begin{document}" not in (project.tex(p) or ""), p)

    return sorted(top, key=order)


# --- environments and figure units --------------------------------------------------------

@dataclass
class _EnvNode:
    name: str
    start: int  # position of \begin
    content_start: int
    content_end: int  # position of \end (or end of parent when unterminated)
    end: int  # position after \end{name}
    parent: _EnvNode | None = None
    children: list[_EnvNode] = field(default_factory=list)


def _env_tree(text: str, start: int, end: int) -> _EnvNode:
    root = _EnvNode("document", start, start, end, end)
    stack = [root]
    for m in _BEGIN_END.finditer(text, start, end):
        kind, name = m.group(1), m.group(2).strip()
        if kind == "begin":
            node = _EnvNode(name, m.start(), m.end(), end, end, parent=stack[-1])
            stack[-1].children.append(node)
            stack.append(node)
            continue
        for k in range(len(stack) - 1, 0, -1):
            if stack[k].name == name:
                for node in stack[k:]:  # close unterminated inner environments here too
                    node.content_end, node.end = m.start(), m.end()
                del stack[k:]
                break
    return root


def _walk(node: _EnvNode):
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        todo.extend(reversed(n.children))


@dataclass
class _Graphic:
    pos: int
    name: str
    import_dir: str | None
    options: str = ""  # the [key=value] list of \includegraphics
    star: bool = False  # \includegraphics*: clip


# graphicx lengths in PostScript points (bp), the unit of viewport/trim without one
_UNITS = {"bp": 1.0, "pt": 72 / 72.27, "in": 72.0, "cm": 72 / 2.54, "mm": 72 / 25.4,
          "pc": 12 * 72 / 72.27, "dd": 1238 / 1157 * 72 / 72.27, "sp": 72 / 72.27 / 65536}
_LENGTH = re.compile(r"^\s*(-?(?:\d+\.?\d*|\.\d+))\s*([a-z]{2})?\s*$")


def _keyvals(options: str) -> dict[str, str]:
    out: dict[str, str] = {}
    depth, cur = 0, []
    parts: list[str] = []
    for c in options:  # commas inside braces do not split
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        depth += (c == "{") - (c == "}")
        cur.append(c)
    parts.append("".join(cur))
    for part in parts:
        key, _, value = part.partition("=")
        if key.strip():
            out[key.strip()] = value.strip().strip("{}").strip()
    return out


def _four_lengths(value: str) -> tuple[float, float, float, float] | None:
    fields = value.split()
    if len(fields) != 4:
        return None
    out = []
    for f in fields:
        m = _LENGTH.match(f)
        if m is None or (m.group(2) and m.group(2) not in _UNITS):
            return None
        out.append(float(m.group(1)) * _UNITS[m.group(2) or "bp"])
    return out[0], out[1], out[2], out[3]


def graphic_page_and_clip(options: str, star: bool = False
                          ) -> tuple[int, tuple[str, float, float, float, float] | None]:
    r"""``page=`` (1-based) and the clip of an ``\includegraphics`` option list.

    The clip is ``("viewport", llx, lly, urx, ury)`` (from the page's lower-left corner) or
    ``("trim", left, bottom, right, top)``, in bp, and only with ``clip``/``clip=true`` or
    the star form: without clip graphicx shrinks the box but still prints the whole page.
    """
    kv = _keyvals(options)
    page = 1
    if "page" in kv and kv["page"].isdigit():
        page = max(1, int(kv["page"]))
    clip = star or ("clip" in kv and kv["clip"].lower() in ("", "true"))
    for key in ("viewport", "trim"):
        if clip and key in kv:
            box = _four_lengths(kv[key])
            return page, ((key, *box) if box else None)
    return page, None


@dataclass
class _Caption:
    pos: int
    text: str


@dataclass
class _Sub:
    """A sub-figure: its own caption (may be empty), graphics and label."""

    pos: int
    caption: str
    graphics: list[_Graphic]
    label: str | None


@dataclass
class _Unit:
    """One figure: a caption with the graphics, sub-figures and label that belong to it."""

    pos: int
    caption: str | None = None
    label: str | None = None
    graphics: list[_Graphic] = field(default_factory=list)
    subs: list[_Sub] = field(default_factory=list)


_FIG_CMDS = re.compile(
    r"\\(includegraphics|epsfig|psfig|epsfbox|epsffile|plotone|plottwo|caption|captionof|"
    r"label|subfigure|subfloat|subcaptionbox|subcaption|DCSIMPORTDIR)(?![A-Za-z])")
_FILE_KEY = re.compile(r"(?:^|,)\s*(?:file|figure)\s*=\s*([^,]+)")


class _Scanner:
    """Finds graphics, captions, labels and sub-figures inside spans of the expanded text."""

    def __init__(self, text: str):
        self.text = text
        self.dirs = sorted((m.start(), m.group(1)) for m in
                           re.finditer(r"\\DCSIMPORTDIR\{([^{}]*)\}", text))

    def import_dir(self, pos: int) -> str | None:
        found = None
        for p, d in self.dirs:
            if p > pos:
                break
            found = d
        return found

    def items(self, start: int, end: int, holes: list[tuple[int, int]]) -> list:
        """Items in ``[start, end)`` outside ``holes`` (sorted, non-overlapping)."""
        out: list = []
        pos, hi = start, 0
        text = self.text
        while pos < end:
            m = _FIG_CMDS.search(text, pos, end)
            if m is None:
                break
            while hi < len(holes) and holes[hi][1] <= m.start():
                hi += 1
            if hi < len(holes) and holes[hi][0] <= m.start() < holes[hi][1]:
                pos = holes[hi][1]
                continue
            pos = self._item(m, end, out)
        return out

    def _item(self, m: re.Match, end: int, out: list) -> int:
        text, name, p = self.text, m.group(1), m.end()
        p = _star(text, p) if name not in ("label", "DCSIMPORTDIR") else p
        if name in ("includegraphics", "epsfbox", "epsffile", "plotone", "plottwo"):
            star = text.startswith("*", _skip_ws(text, m.end()))
            options, p = _read_optionals(text, p, end)
            g = _read_group(text, p, end)
            if g is None:
                return p
            p = g[1]
            names = [g[0]]
            if name == "plottwo":
                g2 = _read_group(text, p, end)
                if g2 is not None:
                    names.append(g2[0])
                    p = g2[1]
            out.extend(_Graphic(m.start(), n, self.import_dir(m.start()),
                                options[-1] if options else "", star) for n in names)
            return p
        if name in ("epsfig", "psfig"):
            g = _read_group(text, p, end)
            if g is None:
                return p
            k = _FILE_KEY.search(g[0])
            if k:
                out.append(_Graphic(m.start(), k.group(1), self.import_dir(m.start())))
            return g[1]
        if name in ("caption", "subcaption"):
            o = _read_optional(text, p, end)
            g = _read_group(text, o[1] if o else p, end)
            if g is None:
                return p
            out.append(_Caption(m.start(), g[0]))
            return g[1]
        if name == "captionof":
            kind = _read_group(text, p, end)
            if kind is None:
                return p
            o = _read_optional(text, kind[1], end)
            g = _read_group(text, o[1] if o else kind[1], end)
            if g is None:
                return kind[1]
            if kind[0].strip() == "figure":
                out.append(_Caption(m.start(), g[0]))
            return g[1]
        if name == "label":
            g = _read_group(text, p, end)
            if g is None:
                return p
            out.append(("label", m.start(), g[0].strip()))
            return g[1]
        if name in ("subfigure", "subfloat"):
            return self._subfloat(m.start(), p, end, out)
        if name == "subcaptionbox":
            return self._subcaptionbox(m.start(), p, end, out)
        return p  # DCSIMPORTDIR: handled by import_dir()

    def _subfloat(self, start: int, p: int, end: int, out: list) -> int:
        text = self.text
        opts, p = _read_optionals(text, p, end)
        body = _read_group(text, p, end)
        if body is None:
            return p
        caption = opts[-1] if opts else ""
        inner_start = text.find("{", p, end) + 1
        out.append(self._sub(start, caption, inner_start, body[1] - 1))
        return body[1]

    def _subcaptionbox(self, start: int, p: int, end: int, out: list) -> int:
        text = self.text
        o = _read_optional(text, p, end)
        cap = _read_group(text, o[1] if o else p, end)
        if cap is None:
            return p
        p = cap[1]
        p = _skip_optionals(text, p, end)
        body = _read_group(text, p, end)
        if body is None:
            return p
        inner_start = text.find("{", p, end) + 1
        out.append(self._sub(start, cap[0], inner_start, body[1] - 1))
        return body[1]

    def _sub(self, start: int, caption: str, body_start: int, body_end: int) -> _Sub:
        items = self.items(body_start, body_end, [])
        labels = [it[2] for it in items if isinstance(it, tuple)]
        labels += _LABEL.findall(caption)
        caps = [it.text for it in items if isinstance(it, _Caption)]
        if not caption.strip() and caps:
            caption = caps[0]
            labels += _LABEL.findall(caption)
        graphics = [it for it in items if isinstance(it, _Graphic)]
        for it in items:
            if isinstance(it, _Sub):
                graphics.extend(it.graphics)
        return _Sub(start, caption, graphics, labels[0] if labels else None)

    def env_sub(self, env: _EnvNode) -> _Sub:
        """A ``subfigure`` environment as a sub-figure."""
        return self._sub(env.start, "", env.content_start, env.content_end)


_LABEL = re.compile(r"\\label\s*\{([^{}]*)\}")


def _units_in(scanner: _Scanner, start: int, end: int, holes: list[tuple[int, int]],
              subs: list[_Sub]) -> list[_Unit]:
    """Split a span into figure units: each caption owns the graphics next to it."""
    items = scanner.items(start, end, holes) + subs
    items.sort(key=_item_pos)
    caps = [i for i, it in enumerate(items) if isinstance(it, _Caption)]
    if not caps:
        unit = _Unit(start)
        for it in items:
            _add_to_unit(unit, it)
        return [unit]
    units = [_Unit(items[i].pos, caption=items[i].text) for i in caps]
    caption_first = caps[0] == 0 or not any(
        isinstance(it, (_Graphic, _Sub)) for it in items[:caps[0]])
    ci = 0  # index of the next caption
    for it in items:
        if isinstance(it, _Caption):
            ci += 1
            labels = _LABEL.findall(it.text)
            if labels and units[ci - 1].label is None:
                units[ci - 1].label = labels[0].strip()
            continue
        if isinstance(it, tuple):  # a label refers to the last caption before it
            target = units[max(ci - 1, 0)]
            if target.label is None:
                target.label = it[2]
            continue
        if caption_first:
            target = units[max(ci - 1, 0)]
        else:
            target = units[min(ci, len(units) - 1)]
        _add_to_unit(target, it)
    return units


def _item_pos(it) -> int:
    return it[1] if isinstance(it, tuple) else it.pos


def _add_to_unit(unit: _Unit, it) -> None:
    if isinstance(it, _Graphic):
        unit.graphics.append(it)
    elif isinstance(it, _Sub):
        unit.subs.append(it)
    elif isinstance(it, tuple) and unit.label is None:
        unit.label = it[2]


def _figure_units(scanner: _Scanner, root: _EnvNode,
                  text: str) -> tuple[list[_Unit], list[tuple[int, int]]]:
    """Every figure unit in document order (floats, captioned minipages, captionof blocks)
    and the spans they occupy (left out of the body text that mentions are taken from)."""
    units: list[_Unit] = []
    claimed: list[tuple[int, int]] = []
    for node in _walk(root):
        if node.name in FLOAT_ENVS and not _inside(node, FLOAT_ENVS):
            units.extend(_float_units(scanner, node))
            claimed.append((node.start, node.end))
    extra, spans = _captionof_units(scanner, root, text, claimed)
    units.extend(extra)
    units.sort(key=lambda u: u.pos)
    return units, claimed + spans


def _inside(node: _EnvNode, names: frozenset) -> bool:
    p = node.parent
    while p is not None:
        if p.name in names:
            return True
        p = p.parent
    return False


def _float_units(scanner: _Scanner, node: _EnvNode) -> list[_Unit]:
    sub_envs = [n for n in _walk(node) if n.name in SUBFIG_ENVS and n is not node
                and not _inside_sub(n, node)]
    holes = [(n.start, n.end) for n in sub_envs]
    subs = [scanner.env_sub(n) for n in sub_envs]
    n_caps = sum(isinstance(it, _Caption) for it in
                 scanner.items(node.content_start, node.content_end, sorted(holes)))
    if n_caps < 2:
        return _units_in(scanner, node.content_start, node.content_end, sorted(holes), subs)
    # several captions: each minipage holding a caption is a figure of its own
    units: list[_Unit] = []
    boxes = [n for n in _walk(node) if n.name == "minipage" and not _inside_sub(n, node)
             and any(isinstance(it, _Caption) for it in scanner.items(
                 n.content_start, n.content_end, sorted(_holes_in(holes, n))))]
    boxes = [b for b in boxes if not any(o is not b and o.start <= b.start and b.end <= o.end
                                         for o in boxes)]
    for b in boxes:
        inner = _holes_in(holes, b)
        units.extend(_units_in(scanner, b.content_start, b.content_end, sorted(inner),
                               [s for s, h in zip(subs, holes, strict=True) if h in inner]))
    rest_holes = sorted(holes + [(b.start, b.end) for b in boxes])
    rest_subs = [s for s, h in zip(subs, holes, strict=True)
                 if not any(b.start <= h[0] < b.end for b in boxes)]
    rest = _units_in(scanner, node.content_start, node.content_end, rest_holes, rest_subs)
    units.extend(u for u in rest if u.caption is not None or u.graphics or u.subs)
    return units


def _inside_sub(n: _EnvNode, top: _EnvNode) -> bool:
    p = n.parent
    while p is not None and p is not top:
        if p.name in SUBFIG_ENVS:
            return True
        p = p.parent
    return False


def _holes_in(holes: list[tuple[int, int]], n: _EnvNode) -> list[tuple[int, int]]:
    return [h for h in holes if n.start <= h[0] < n.end]


_CAPTIONOF = re.compile(r"\\captionof\*?\s*\{\s*figure\s*\}")


def _captionof_units(scanner: _Scanner, root: _EnvNode, text: str,
                     claimed: list[tuple[int, int]]) -> tuple[list[_Unit], list[tuple[int, int]]]:
    spans: dict[tuple[int, int], None] = {}
    for m in _CAPTIONOF.finditer(text, root.start, root.end):
        if any(s <= m.start() < e for s, e in claimed):
            continue
        node = _innermost(root, m.start())
        if node is root:
            a = text.rfind("\n\n", root.start, m.start())
            b = text.find("\n\n", m.end(), root.end)
            spans[(root.start if a < 0 else a, root.end if b < 0 else b)] = None
        else:
            spans[(node.content_start, node.content_end)] = None
    ordered = sorted(spans)
    units: list[_Unit] = []
    for s, e in ordered:
        inner = [(a, b) for a, b in ordered if (a, b) != (s, e) and s <= a and b <= e]
        units.extend(u for u in _units_in(scanner, s, e, inner, []) if u.caption is not None)
    return units, ordered


def _innermost(root: _EnvNode, pos: int) -> _EnvNode:
    node = root
    while True:
        for c in node.children:
            if c.start <= pos < c.end:
                node = c
                break
        else:
            return node


# --- graphics -----------------------------------------------------------------------------

@dataclass
class _GraphicsContext:
    files: Mapping[str, bytes]
    main_dir: str
    paths: list[tuple[int, list[str]]]  # (position, \graphicspath entries)
    extensions: list[tuple[int, tuple[str, ...]]]
    lower: dict[str, list[str]]  # lower-cased path -> paths (built once per project)

    def _at(self, seq: list, pos: int, default):
        found = default
        for p, v in seq:
            if p > pos:
                break
            found = v
        return found

    def candidates(self, g: _Graphic) -> list[str]:
        name = g.name.strip().strip('"').replace("{", "").replace("}", "").strip()
        name = name[2:] if name.startswith("./") else name
        if not name:
            return []
        exts = self._at(self.extensions, g.pos, GRAPHIC_EXTENSIONS)
        base = g.import_dir if g.import_dir is not None else self.main_dir
        bases = [base] + [_join(base, d) or d for d in self._at(self.paths, g.pos, [])]
        has_ext = posixpath.splitext(name)[1].lower() in {e.lower() for e in GRAPHIC_EXTENSIONS}
        out: list[str] = []
        for b in dict.fromkeys(bases):
            stem = _join(b, name)
            if stem is None:
                continue
            if has_ext:
                out.append(stem)
                if stem.lower().endswith(".eps"):
                    out.append(stem[:-4] + "-eps-converted-to.pdf")
            out.extend(stem + e for e in exts)
        return list(dict.fromkeys(out))

    def resolve(self, g: _Graphic) -> tuple[str | None, bool]:
        """(path in files, resolved only case-insensitively)."""
        cands = self.candidates(g)
        for c in cands:
            if c in self.files:
                return c, False
        hits = {h for c in cands for h in self.lower.get(c.lower(), [])}
        if len(hits) == 1:
            return hits.pop(), True
        return None, False


def _lower_index(files: Mapping[str, bytes]) -> dict[str, list[str]]:
    lower: dict[str, list[str]] = {}
    for p in sorted(files):
        lower.setdefault(p.lower(), []).append(p)
    return lower


def _graphics_context(project: _Project, main: str, text: str) -> _GraphicsContext:
    paths = []
    for m in re.finditer(r"\\graphicspath\s*\{", text):
        g = _read_group(text, m.end() - 1)
        if g is None:
            continue
        entries = re.findall(r"\{([^{}]*)\}", g[0]) or [g[0]]
        paths.append((m.start(), [_dir_entry(e) for e in entries if e.strip()]))
    exts = []
    for m in re.finditer(r"\\DeclareGraphicsExtensions\s*\{([^{}]*)\}", text):
        found = tuple(e.strip() for e in m.group(1).split(",") if e.strip().startswith("."))
        if found:
            exts.append((m.start(), found))
    if project.lower is None:
        project.lower = _lower_index(project.files)
    return _GraphicsContext(project.files, posixpath.dirname(main), paths, exts, project.lower)


def _dir_entry(e: str) -> str:
    e = e.strip()
    e = e[2:] if e.startswith("./") else e
    return e if e.endswith("/") or not e else e + "/"


# --- captions and mentions to text ---------------------------------------------------------

@lru_cache(maxsize=8)
def _converter(ref_token: str, cit_token: str):
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec
    from pylatexenc.latex2text import get_default_latex_context_db as text_db
    from pylatexenc.latexwalker import get_default_latex_context_db as walker_db
    from pylatexenc.macrospec import MacroSpec

    wdb = walker_db()
    tdb = text_db()
    wmacros = [MacroSpec(m, "*{") for m in REF_MACROS]
    wmacros += [MacroSpec(m, "*[[{") for m in CITE_MACROS]
    wmacros += [MacroSpec("label", "{"), MacroSpec("DCSIMPORTDIR", "{"),
                MacroSpec("footnote", "[{"), MacroSpec("protect", ""),
                MacroSpec("includegraphics", "*[[{"), MacroSpec("color", "[{"),
                MacroSpec("textcolor", "[{{"), MacroSpec("hspace", "*{"),
                MacroSpec("vspace", "*{")]
    wmacros += [MacroSpec(m, "{") for m in _KEEP_ARG]
    tmacros = [MacroTextSpec(m, simplify_repl=ref_token) for m in REF_MACROS]
    tmacros += [MacroTextSpec(m, simplify_repl=cit_token) for m in CITE_MACROS]
    tmacros += [MacroTextSpec(m, simplify_repl="") for m in
                ("label", "DCSIMPORTDIR", "protect", "includegraphics", "color", "hspace",
                 "vspace", "footnote")]
    tmacros += [MacroTextSpec("textcolor", simplify_repl="%(3)s")]
    tmacros += [MacroTextSpec(m, simplify_repl="%(1)s") for m in _KEEP_ARG]
    wdb.add_context_category("datacomp_sci", macros=wmacros, prepend=True)
    tdb.add_context_category("datacomp_sci", macros=tmacros, prepend=True)
    return wdb, LatexNodes2Text(latex_context=tdb, math_mode="text")


_MAX_TEXT_INPUT = 20_000
_NEEDS_PARSER = re.compile(r"[\\{}$~`'&^_#-]")
# one-argument macros whose argument is kept as plain text (pylatexenc drops some of these
# and turns math alphabets into Unicode "mathematical" letters that tokenizers do not know)
_KEEP_ARG = ("texttt", "textsf", "textup", "textmd", "mbox", "mathbf", "mathit", "mathcal",
             "mathsf", "mathtt", "boldsymbol", "bm", "mathscr", "mathfrak", "hbox")


@lru_cache(maxsize=4096)
def latex_to_text(latex: str, ref_token: str = "<ref>", cit_token: str = "<cit.>") -> str:
    """A LaTeX fragment as plain Unicode text, whitespace collapsed."""
    from pylatexenc.latexwalker import LatexWalker

    if not _NEEDS_PARSER.search(latex):  # plain prose: skip pylatexenc (the slow part)
        return " ".join(latex.split())

    latex = latex[:_MAX_TEXT_INPUT]
    wdb, conv = _converter(ref_token, cit_token)
    try:
        nodes, _, _ = LatexWalker(latex, latex_context=wdb, tolerant_parsing=True).get_latex_nodes()
        text = conv.nodelist_to_text(nodes)
    except (RecursionError, ValueError, IndexError, TypeError, AttributeError):
        text = re.sub(r"\\[A-Za-z]+\*?|[{}$]", " ", latex)
    return " ".join(text.split())


_BOUNDARY = re.compile(PUNCT_END + r"|\n[ \t]*\n\s*|\\(?:sub)*section\*?|\\paragraph\*?|"
                       r"\\item(?![A-Za-z])")
_REF_IN = re.compile(r"\\(?:" + "|".join(REF_MACROS) + r")\*?\s*\{([^{}]*)\}")


def _sentences(text: str, start: int, end: int, holes: list[tuple[int, int]]) -> list[str]:
    """Body sentences (raw LaTeX) that contain a reference, floats cut out."""
    parts, pos = [], start
    for a, b in holes:
        if b <= pos or a >= end:
            continue
        parts.append(text[pos:max(a, pos)])
        pos = max(pos, b)
    parts.append(text[pos:end])
    body = " \n\n ".join(parts)
    out, pos = [], 0
    for m in _BOUNDARY.finditer(body):
        if m.group(1) is not None and not is_sentence_end(body, m.start(1), m.end()):
            continue
        cut = m.end(1) if m.group(1) is not None else m.start()
        out.append(body[pos:cut])
        pos = m.end() if m.group(1) is not None or m.group(0).startswith("\n") else _skip_heading(body, m.end())
    out.append(body[pos:])
    return [s for s in out if "ref" in s]


def _skip_heading(body: str, pos: int) -> int:
    o = _read_optional(body, pos)
    g = _read_group(body, o[1] if o else pos)
    return g[1] if g else pos


def _mentions_index(text: str, start: int, end: int, holes: list[tuple[int, int]],
                    labels: set[str], options: LatexOptions) -> dict[str, list[tuple[int, str]]]:
    """label -> [(sentence number, plain sentence)] for the labels asked for."""
    index: dict[str, list[tuple[int, str]]] = {}
    for k, raw in enumerate(_sentences(text, start, end, holes)):
        keys = {key.strip() for m in _REF_IN.finditer(raw) for key in m.group(1).split(",")}
        keys &= labels
        if not keys:
            continue
        plain = latex_to_text(raw, options.ref_token, options.cit_token)
        if not plain:
            continue
        for key in keys:
            index.setdefault(key, []).append((k, plain))
    return index


def _mentions_for(index: dict[str, list[tuple[int, str]]], *labels: str | None) -> list[str]:
    hits = sorted({h for lab in labels if lab for h in index.get(lab, [])})
    return list(dict.fromkeys(s for _, s in hits))


# --- pairs --------------------------------------------------------------------------------

@dataclass
class _Document:
    """One main file, expanded, with what pair-making needs."""

    text: str
    graphics: _GraphicsContext
    mentions: dict[str, list[tuple[int, str]]]


def _process_main(project: _Project, main: str, seen: set[str]) -> None:
    result, opt = project.result, project.options
    text = _Expander(project, main).run()
    b = text.find("\\begin{document}")
    start = b + len("\\begin{document}") if b >= 0 else 0
    e = text.find("\\end{document}", start)
    end = e if e >= 0 else len(text)
    root = _env_tree(text, start, end)
    scanner = _Scanner(text)
    units, spans = _figure_units(scanner, root, text)
    labels = {lab for u in units for lab in [u.label] + [s.label for s in u.subs] if lab}
    index = _mentions_index(text, start, end, _merge(spans), labels, opt) if labels else {}
    doc = _Document(text, _graphics_context(project, main, text), index)
    for unit in units:
        result.figures_found += 1
        _unit_pairs(doc, unit, project, seen)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _unit_pairs(doc: _Document, unit: _Unit, project: _Project, seen: set[str]) -> None:
    result, opt = project.result, project.options
    caption = _text(unit.caption, opt)
    item = unit.label
    captioned = [s for s in unit.subs if _text(s.caption, opt)]
    panels = list(unit.graphics) + [g for s in unit.subs if s not in captioned
                                     for g in s.graphics]
    if not captioned and not panels:
        result.skip("no_graphic", item, "figure without \\includegraphics")
        return
    if not caption and not captioned:
        result.skip("no_caption", item or panels[0].name)
        return
    for s in captioned:
        sub_caption = _text(s.caption, opt)
        if not s.graphics:
            result.skip("no_graphic", s.label, "sub-figure without a graphic")
        elif len(s.graphics) > 1 and not opt.keep_multi_panel:
            result.skip("multi_graphic_no_subcaption", s.label or s.graphics[0].name)
        else:
            if len(s.graphics) > 1:
                result.skip("multi_panel_kept", s.label or s.graphics[0].name)
            for g in s.graphics:
                _emit(doc, g, sub_caption, s.label, caption or None,
                      _mentions_for(doc.mentions, s.label, unit.label), project, seen)
    if not panels:
        return
    if len(panels) == 1 and not captioned:
        _emit(doc, panels[0], caption, unit.label, None,
              _mentions_for(doc.mentions, unit.label), project, seen)
    elif not opt.keep_multi_panel or not caption:
        reason = "multi_graphic_no_subcaption" if caption else "no_caption"
        result.skip(reason, item or panels[0].name, f"{len(panels)} graphics")
    else:
        result.skip("multi_panel_kept", item or panels[0].name, f"{len(panels)} graphics")
        for g in panels:
            _emit(doc, g, caption, unit.label, None,
                  _mentions_for(doc.mentions, unit.label), project, seen)


def _text(latex: str | None, opt: LatexOptions) -> str:
    return latex_to_text(latex, opt.ref_token, opt.cit_token) if latex else ""


def _emit(doc: _Document, g: _Graphic, caption: str, label: str | None,
          parent: str | None, mentions: list[str], project: _Project, seen: set[str]) -> None:
    result = project.result
    path, by_case = doc.graphics.resolve(g)
    if path is None:
        result.skip("graphic_not_found", g.name.strip(), "no file matches")
        return
    if by_case:
        result.skip("graphic_case_mismatch_resolved", g.name.strip(), path)
    if posixpath.splitext(path)[1].lower() not in IMAGE_FORMATS:
        result.skip("unsupported_graphic_format", path)
        return
    page, region = graphic_page_and_clip(g.options, g.star)
    if not path.lower().endswith(".pdf"):
        page, region = 1, None  # pages and viewports are applied to PDF figures only
    figure_path = path if page == 1 else f"{path}#page={page}"
    if figure_path in seen:
        result.skip("duplicate_figure_path", figure_path)
        return
    seen.add(figure_path)
    result.pairs.append(FigurePair(figure_path=figure_path, caption=caption, label=label,
                                   parent_caption=parent, mentions=mentions, page=page,
                                   clip=region))


def extract_latex(files: Mapping[str, bytes], paper_id: str,
                  options: LatexOptions = LatexOptions()) -> PaperPairs:
    """Figure-caption pairs of one arXiv LaTeX project (see the module docstring)."""
    result = PaperPairs(paper_id=paper_id, pairs=[])
    project = _Project(files, options, result)
    mains = _main_files(project)
    if not mains:
        result.skip("no_main_tex", paper_id, "no .tex file with \\documentclass")
        return result
    if len(mains) > options.max_main_files:
        result.skip("too_many_main_files", paper_id,
                    f"{len(mains)} main files; the first {options.max_main_files} are read")
        mains = mains[:options.max_main_files]
    seen: set[str] = set()
    for main in mains:
        if project.expanded > options.max_tex_bytes:
            break
        _process_main(project, main, seen)
    return result
