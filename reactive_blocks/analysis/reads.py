"""Which context paths each ``{% block %}`` of a Django template reads.

The analysis walks the compiled node tree, never the source text. Names bound inside
the template (``{% for %}``, ``{% with %}``, ``as`` variables) are mapped back to the
paths they stand for, so ``{% for item in doc.items %}{{ item.title }}`` reads
``doc.items`` and ``doc.items.title``. When a node hides what it reads (a custom tag
with no visible expressions, ``{% debug %}``, a dynamic include) the block is marked as
reading *everything*: it then re-renders on any change, which is correct, only slower.

Blocks are analysed as django-render-block renders them: on their own, without the
``{% with %}`` or ``{% for %}`` around them.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.template import Engine, Node, engines
from django.template import defaulttags as dt
from django.template.base import (
    FilterExpression,
    TextNode,
    TokenType,
    Variable,
    VariableNode,
)
from django.template.library import InclusionNode, SimpleNode, TagHelperNode
from django.template.loader_tags import BlockNode, ExtendsNode, IncludeNode
from django.templatetags import i18n, l10n, static, tz

from reactive_blocks.analysis.findings import Finding
from reactive_blocks.conf import conf

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from django.template.base import Template

__all__ = [
    "BlockAnalysis",
    "ChainTemplate",
    "TemplateAnalysis",
    "analyse_template",
    "django_engine",
    "page_chain",
    "reads_of",
]

# Names that are never context paths inside a template (True/False/None are
# constants Django keeps at the bottom of every context).
_IGNORED_ROOTS = frozenset({"forloop", "block", "csrf_token", "True", "False", "None"})
# A cache, not state: compiled templates (kept by Django's cached loader) map to
# their block nodes, and entries go when the template does.
_BLOCK_NODES: weakref.WeakKeyDictionary[Template, dict[str, BlockNode]] = (
    weakref.WeakKeyDictionary()
)

# Nodes that read nothing from the context themselves.
_INERT = (
    TextNode,
    dt.CommentNode,
    dt.LoadNode,
    dt.TemplateTagNode,
    dt.ResetCycleNode,
    dt.VerbatimNode,
    dt.SpacelessNode,
    dt.AutoEscapeControlNode,
    l10n.LocalizeNode,
    tz.LocalTimeNode,
)


@dataclass(frozen=True, slots=True)
class BlockAnalysis:
    """What one block of a page reads, and where it was defined."""

    block_name: str
    template_name: str  # the template whose definition the page renders
    line: int | None
    paths: frozenset[str]
    everything: str | None = None  # why the block is taken to read everything
    personal: bool = False  # renders per-request data ({% csrf_token %})
    # Names it reads that a tag around it binds ({% with %}, {% for %}): a
    # stream renders the block alone, without them. Says which and where.
    outside: str | None = None


@dataclass(frozen=True, slots=True)
class ChainTemplate:
    """One template of a page's inheritance chain."""

    name: str
    source: str
    blocks: frozenset[str]  # the blocks it defines itself
    extends: bool  # it has a parent: its content outside blocks is not rendered


@dataclass(slots=True)
class TemplateAnalysis:
    """The blocks of one page (its own and those it inherits) and its ancestry."""

    template_name: str
    chain: list[str]  # this template, its parent, ... as far as extends are static
    templates: list[ChainTemplate] = field(default_factory=list)  # as ``chain``
    blocks: dict[str, BlockAnalysis] = field(default_factory=dict)
    problems: list[Finding] = field(
        default_factory=list
    )  # templates that would not load


def django_engine(using: str | None = None) -> Engine:
    """The Django template engine named ``using`` (or the first one configured)."""
    for backend in engines.all():
        if using is None or backend.name == using:
            engine = getattr(backend, "engine", None)
            if isinstance(engine, Engine):
                return engine
    raise LookupError(
        f"No Django template engine named {using!r} is configured."
        if using
        else "No DjangoTemplates engine is configured in TEMPLATES."
    )


def analyse_template(
    template_name: str, engine: Engine | None = None
) -> TemplateAnalysis:
    """Analyse every block that rendering ``template_name`` can produce.

    Raises ``TemplateDoesNotExist`` / ``TemplateSyntaxError`` for the template itself.
    """
    engine = engine or django_engine()
    reader = _Reader(engine)
    chain = reader.chain(engine.get_template(template_name))
    result = TemplateAnalysis(template_name, [_name(t) for t in chain])
    result.templates = [
        ChainTemplate(
            _name(t), t.source, frozenset(_blocks(t)), _extends_node(t) is not None
        )
        for t in chain
    ]
    # Parents first, so a page's own blocks keep their source order at the end.
    names = [name for template in reversed(chain) for name in _blocks(template)]
    for name in dict.fromkeys(names):
        result.blocks[name] = reader.block(chain, name)
    result.problems = reader.problems
    return result


def reads_of(
    nodes: Iterable[Node], local: Iterable[str], engine: Engine | None = None
) -> tuple[frozenset[str], str | None]:
    """What ``nodes`` read from the context besides the ``local`` names (a loop's
    variable): the paths, and why they read everything, if they do."""
    acc = _Accumulator()
    _Reader(engine or django_engine()).visit(
        nodes, _Scope(dict.fromkeys(local, None)), acc
    )
    return frozenset(acc.paths), acc.reason


def page_chain(template: Template, engine: Engine | None = None) -> list[Template]:
    """``template`` and its static ancestors, child first; a block renders its
    definition in the first of them that has one."""
    return _Reader(engine or django_engine()).chain(template)


@dataclass(slots=True)
class _Scope:
    """Names bound inside the template: name -> the path it stands for (None: local)."""

    aliases: dict[str, str | None]
    isolated: bool = False  # ``{% include ... only %}``: unbound names read nothing
    chain: list[Template] = field(default_factory=list)
    block: tuple[str, int] | None = None  # (block name, chain level) for block.super

    def child(self, **aliases: str | None) -> _Scope:
        return _Scope(
            {**self.aliases, **aliases}, self.isolated, self.chain, self.block
        )


class _Reader:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.problems: list[Finding] = []
        self._including: list[str] = []
        self._blocks: dict[tuple[tuple[str, ...], str], BlockAnalysis] = {}

    # Templates and blocks -------------------------------------------------------

    def chain(self, template: Template) -> list[Template]:
        """``template`` and its static ancestors, child first."""
        chain = [template]
        while True:
            extends = _extends_node(chain[-1])
            name = _constant(extends.parent_name) if extends else None
            if name is None:
                return chain
            # As Django does: skip the origins already in the chain, so a template
            # may extend another of the same name (an override of an app's one).
            history = [t.origin for t in chain]
            try:
                parent, _ = self.engine.find_template(name, skip=history)
            except Exception as exc:
                self._problem(name, exc, f"extended by {_name(chain[-1])!r}")
                return chain
            if not hasattr(parent, "nodelist") or parent.origin in history:
                return chain
            chain.append(parent)

    def _problem(self, name: str, exc: Exception, how: str) -> None:
        lineno = getattr(getattr(exc, "token", None), "lineno", None)
        self.problems.append(
            Finding(
                "W008",
                f"Template {name!r} ({how}) could not be loaded: {exc}",
                hint="Fix the template; blocks using it read everything until then.",
                template=name,
                line=lineno if isinstance(lineno, int) else None,
            )
        )

    def block(
        self,
        chain: list[Template],
        name: str,
        level: int = 0,
        outer: _Scope | None = None,
    ) -> BlockAnalysis:
        """The most derived definition of block ``name`` from ``chain[level]`` up.

        ``outer`` is the scope of a nested block's surroundings (a loop variable
        seen from inside the block is not a path).
        """
        # A result computed inside an include may have been cut short by the
        # include-cycle guard, so only top-level results are kept.
        if outer is not None or self._including:
            return self._block(chain, name, level, outer)
        key = (tuple(_name(t) for t in chain[level:]), name)
        if key not in self._blocks:
            self._blocks[key] = self._block(chain, name, level, None)
        return self._blocks[key]

    def _block(
        self, chain: list[Template], name: str, level: int, outer: _Scope | None
    ) -> BlockAnalysis:
        for index in range(level, len(chain)):
            node = _find_block(chain[index], name)
            if node is not None:
                acc = _Accumulator()
                scope = outer.child() if outer is not None else _Scope({})
                scope.chain, scope.block = chain, (name, index)
                self.visit(node.nodelist, scope, acc)
                self.dynamic_extends(chain, scope, acc)
                around = _bound_around_everywhere(chain, name)
                outside = sorted(
                    f"{root!r} ({around[root]})"
                    for root in {path.split(".", 1)[0] for path in acc.paths}
                    if root in around
                )
                return BlockAnalysis(
                    name,
                    _name(chain[index]),
                    _line(node),
                    frozenset(acc.paths),
                    acc.reason,
                    acc.personal,
                    ", ".join(outside) or None,
                )
        return BlockAnalysis(name, _name(chain[0]), None, frozenset())

    # Nodes -------------------------------------------------------------------------

    def visit(self, nodes: Iterable[Node], scope: _Scope, acc: _Accumulator) -> None:
        for node in nodes:
            self.node(node, scope, acc)

    def node(self, node: Node, scope: _Scope, acc: _Accumulator) -> None:
        if isinstance(node, _INERT):
            self.visit_children(node, scope, acc)
        elif isinstance(node, dt.CsrfTokenNode):
            acc.personal = True
        elif isinstance(node, VariableNode):
            self.read(node.filter_expression, scope, acc)
        elif isinstance(node, BlockNode):
            # A nested block renders its most derived definition, in the scope
            # around it.
            if scope.chain:
                around = scope if scope.aliases or scope.isolated else None
                acc.merge(self.block(scope.chain, node.name, outer=around))
            else:
                self.visit(node.nodelist, scope.child(), acc)
        elif isinstance(node, ExtendsNode):
            pass  # handled through the chain
        elif isinstance(node, dt.IfNode):
            for condition, nodelist in node.conditions_nodelists:
                self.condition(condition, scope, acc)
                # A name bound in one branch stays local to it: after the tag
                # the context's own value may show instead.
                self.visit(nodelist, scope.child(), acc)
        elif isinstance(node, dt.ForNode):
            self.read(node.sequence, scope, acc)
            sequence = self.path_of(node.sequence, scope)
            inner = scope.child(**dict.fromkeys(node.loopvars, sequence))
            self.visit(_nodes(node.nodelist_loop), inner, acc)
            self.visit(_nodes(node.nodelist_empty), scope.child(), acc)
        elif isinstance(node, dt.WithNode):
            for expression in node.extra_context.values():
                self.read(expression, scope, acc)
            bound = {k: self.path_of(v, scope) for k, v in node.extra_context.items()}
            self.visit(node.nodelist, scope.child(**bound), acc)
        elif isinstance(node, IncludeNode):
            self.include(node, scope, acc)
        elif isinstance(node, dt.RegroupNode):
            self.read(node.target, scope, acc)
            target = self.path_of(node.target, scope)
            # Django compiles the grouping key as "<as name>.<key>"; the as-name
            # stands for the target's items.
            self.read(node.expression, scope.child(**{node.var_name: target}), acc)
            scope.aliases[node.var_name] = target
        elif isinstance(node, dt.IfChangedNode):
            for expression in getattr(node, "_varlist", ()):
                self.read(expression, scope, acc)
            self.visit_children(node, scope, acc)
        elif isinstance(node, dt.FilterNode):
            # Compiled as "var|filters"; only the filter arguments are reads.
            for _, args in node.filter_expr.filters:
                for is_variable, arg in args:
                    if is_variable:
                        self.read_variable(arg, scope, acc)
            self.visit(node.nodelist, scope.child(), acc)
        elif isinstance(node, dt.DebugNode):
            acc.everything(
                f"{{% debug %}} at line {_line(node)} prints the whole context"
            )
        elif isinstance(node, i18n.BlockTranslateNode):
            self.block_translate(node, scope, acc)
        elif isinstance(node, TagHelperNode):
            self.tag_helper(node, scope, acc)
        else:
            self.unknown(node, scope, acc)

    def visit_children(self, node: Node, scope: _Scope, acc: _Accumulator) -> None:
        for attr in node.child_nodelists:
            nodelist = getattr(node, attr, None)
            if nodelist:
                self.visit(nodelist, scope.child(), acc)

    def block_super(self, scope: _Scope, acc: _Accumulator) -> None:
        if scope.block is None or not scope.chain:
            return
        name, level = scope.block
        bound = scope if scope.aliases or scope.isolated else None
        acc.merge(self.block(scope.chain, name, level + 1, outer=bound))

    def dynamic_extends(
        self, chain: list[Template], scope: _Scope, acc: _Accumulator
    ) -> None:
        """A chain ending in ``{% extends variable %}`` can render anything."""
        extends = _extends_node(chain[-1])
        if extends is not None and _constant(extends.parent_name) is None:
            self.read(extends.parent_name, scope, acc)
            acc.everything(
                f"{{% extends %}} of a variable in {_name(chain[-1])!r} at line "
                f"{_line(extends)}"
            )

    def condition(self, condition: Any, scope: _Scope, acc: _Accumulator) -> None:
        if condition is None:
            return
        value = getattr(condition, "value", None)
        if isinstance(value, FilterExpression):
            self.read(value, scope, acc)
        for side in (
            getattr(condition, "first", None),
            getattr(condition, "second", None),
        ):
            self.condition(side, scope, acc)

    def include(self, node: IncludeNode, scope: _Scope, acc: _Accumulator) -> None:
        for expression in node.extra_context.values():
            self.read(expression, scope, acc)
        bound = {k: self.path_of(v, scope) for k, v in node.extra_context.items()}
        if node.isolated_context:
            inner = _Scope(bound, isolated=True)
        else:
            inner = _Scope({**scope.aliases, **bound}, scope.isolated)
        name = _constant(node.template)
        if name is None:
            self.read(node.template, scope, acc)
            acc.everything(
                f"{{% include %}} of a variable template at line {_line(node)}"
            )
            return
        if name in self._including:
            return  # a recursive include adds nothing new
        try:
            template = self.engine.get_template(name)
        except Exception as exc:
            self._problem(name, exc, f"included at line {_line(node)}")
            acc.everything(f"{{% include {name!r} %}} could not be loaded")
            return
        self._including.append(name)
        try:
            chain = self.chain(template)
            inner.chain, inner.block = chain, None
            self.visit(chain[-1].nodelist, inner, acc)
            self.dynamic_extends(chain, inner, acc)
        finally:
            self._including.pop()

    def block_translate(self, node: Any, scope: _Scope, acc: _Accumulator) -> None:
        for expression in node.extra_context.values():
            self.read(expression, scope, acc)
        bound = {k: self.path_of(v, scope) for k, v in node.extra_context.items()}
        if getattr(node, "counter", None) is not None:
            self.read(node.counter, scope, acc)
            bound[node.countervar] = None
        self.read(getattr(node, "message_context", None), scope, acc)
        inner = scope.child(**bound)
        for token in [*node.singular, *(node.plural or ())]:
            if token.token_type == TokenType.VAR:
                self.read_variable(Variable(token.contents), inner, acc)
        if node.asvar:
            scope.aliases[node.asvar] = None

    def tag_helper(self, node: TagHelperNode, scope: _Scope, acc: _Accumulator) -> None:
        for expression in [*node.args, *node.kwargs.values()]:
            self.read(expression, scope, acc)
        if node.takes_context and _tag_name(node) not in conf.ARGUMENT_TAGS:
            acc.everything(
                f"{{% {_tag_name(node)} %}} at line {_line(node)} takes the whole context"
            )
        target = getattr(node, "target_var", None)
        if isinstance(node, SimpleNode) and target:
            scope.aliases[target] = None
        # simple_block_tag: the content between the tags is rendered too. An
        # inclusion tag's template sees only what its function returns.
        content = getattr(node, "nodelist", None)
        if content and not isinstance(node, InclusionNode):
            self.visit(content, scope.child(), acc)
        if isinstance(node, InclusionNode) and self._uses_csrf(node.filename):
            acc.personal = True  # Django hands it the page's csrf_token

    def _uses_csrf(self, template: Any) -> bool:
        try:
            if isinstance(template, str):
                template = self.engine.get_template(template)
            nodelist = getattr(template, "nodelist", None)
            return bool(nodelist and nodelist.get_nodes_by_type(dt.CsrfTokenNode))
        except Exception:
            return False  # it fails on the page too; the render says why

    def unknown(self, node: Node, scope: _Scope, acc: _Accumulator) -> None:
        """A custom or unlisted tag: read every expression it holds, if any."""
        expressions = list(_expressions(vars(node)))
        if not expressions and not _reads_nothing(node):
            acc.everything(
                f"{{% {_tag_name(node)} %}} ({type(node).__name__}) at line "
                f"{_line(node)} exposes no expressions to analyse"
            )
        elif not _django_node(node) and _tag_name(node) not in conf.ARGUMENT_TAGS:
            # A tag of its own may read anything from the context as it renders
            # (context["user"]): a missed read is a page that stops updating. Its
            # arguments are not listed as reads: whether it resolves them or uses
            # their text (allauth's {% element h1 %}) cannot be seen from here.
            acc.everything(
                f"{{% {_tag_name(node)} %}} ({type(node).__name__}) at line "
                f"{_line(node)} is a tag of its own, which may read any name"
            )
        else:
            for expression in expressions:
                if isinstance(expression, FilterExpression):
                    self.read(expression, scope, acc)
                else:
                    self.read_variable(expression, scope, acc)
        for local in _binds(node):
            scope.aliases[local] = None
        self.visit_children(node, scope, acc)

    # Expressions --------------------------------------------------------------------

    def read(self, expression: Any, scope: _Scope, acc: _Accumulator) -> None:
        if not isinstance(expression, FilterExpression):
            return
        if isinstance(expression.var, Variable):
            self.read_variable(expression.var, scope, acc)
        for _, args in expression.filters:
            for is_variable, arg in args:
                if is_variable:
                    self.read_variable(arg, scope, acc)

    def read_variable(
        self, variable: Variable, scope: _Scope, acc: _Accumulator
    ) -> None:
        if variable.lookups is not None and variable.lookups[:2] == ("block", "super"):
            self.block_super(scope, acc)
            return
        if variable.lookups is not None and variable.lookups[0] == "csrf_token":
            acc.personal = True
        path = self.variable_path(variable, scope)
        if path is not None:
            acc.paths.add(path)

    def variable_path(self, variable: Variable, scope: _Scope) -> str | None:
        if variable.lookups is None:
            return None  # a literal
        root, *rest = variable.lookups
        if root in scope.aliases:
            base = scope.aliases[root]
            return None if base is None else ".".join([base, *rest])
        if scope.isolated or root in _IGNORED_ROOTS:
            return None
        return ".".join(variable.lookups)

    def path_of(self, expression: Any, scope: _Scope) -> str | None:
        """The path a plain variable expression stands for (None for literals)."""
        if isinstance(expression, FilterExpression) and isinstance(
            expression.var, Variable
        ):
            return self.variable_path(expression.var, scope)
        return None


class _Accumulator:
    __slots__ = ("paths", "personal", "reason")

    def __init__(self) -> None:
        self.paths: set[str] = set()
        self.reason: str | None = None
        self.personal = False

    def everything(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def merge(self, other: BlockAnalysis) -> None:
        self.paths |= other.paths
        self.personal |= other.personal
        if other.everything is not None:
            self.everything(other.everything)


def _extends_node(template: Template) -> ExtendsNode | None:
    for node in template.nodelist:
        if isinstance(node, ExtendsNode):
            return node
    return None


def _blocks(template: Template) -> dict[str, BlockNode]:
    """The block nodes of ``template`` by name, found once per compiled template."""
    found = _BLOCK_NODES.get(template)
    if found is None:
        nodes = template.nodelist.get_nodes_by_type(BlockNode)
        found = {node.name: node for node in nodes if isinstance(node, BlockNode)}
        _BLOCK_NODES[template] = found
    return found


def _find_block(template: Template, name: str) -> BlockNode | None:
    return _blocks(template).get(name)


def _nodes(nodelist: Any) -> list[Node]:
    return [node for node in nodelist or () if isinstance(node, Node)]


def _bound_around_everywhere(chain: list[Template], name: str) -> dict[str, str]:
    """The names bound around block ``name`` in any template of the chain that
    places it (a parent may wrap the block a child fills)."""
    around: dict[str, str] = {}
    for template in chain:
        node = _find_block(template, name)
        if node is not None:
            around.update(_bound_around(_nodes(template.nodelist), node, {}) or {})
    return around


def _bound_around(
    nodes: list[Node], target: Node, bound: dict[str, str]
) -> dict[str, str] | None:
    """The names tags around ``target`` bind (name -> which tag, where), or None
    when ``target`` is not among ``nodes``."""
    for node in nodes:
        if node is target:
            return bound
        inner = bound
        if isinstance(node, dt.WithNode):
            where = f"{{% with %}} at line {_line(node)}"
            inner = {**bound, **dict.fromkeys(node.extra_context, where)}
        elif isinstance(node, dt.ForNode):
            where = f"{{% for %}} at line {_line(node)}"
            inner = {**bound, **dict.fromkeys(node.loopvars, where)}
        for attr in node.child_nodelists:
            found = _bound_around(_nodes(getattr(node, attr, None)), target, inner)
            if found is not None:
                return found
        # {% url ... as u %}, {% get_current_language_bidi as BIDI %}: bound for
        # what follows, which a block rendered alone does not see.
        names = _binds(node)
        if names:
            where = f"{{% {_tag_name(node)} ... as %}} at line {_line(node)}"
            bound = {**bound, **dict.fromkeys(names, where)}
    return None


# Where tags keep the name they bind (``as name``, allauth's ``{% setvar name %}``).
_BINDING_ATTRIBUTES = (
    "asvar",
    "varname",
    "variable",
    "target_var",
    "var_name",
    "variable_name",
    "var",
)


def _binds(node: Node) -> list[str]:
    """The names a tag binds for the rest of its template (``as name``)."""
    if isinstance(node, dt.WithNode | dt.ForNode | BlockNode):
        return []  # bound inside them only
    names = []
    for attr in _BINDING_ATTRIBUTES:
        value = getattr(node, attr, None)
        if isinstance(value, str) and value:
            names.append(value)
    return names


def _constant(expression: Any) -> str | None:
    """The string of a quoted-literal expression such as ``"base.html"``, else None."""
    if (
        isinstance(expression, FilterExpression)
        and isinstance(expression.var, str)
        and not expression.filters
    ):
        return str(expression.var)
    return None


def _expressions(values: Any, depth: int = 0) -> Iterator[FilterExpression | Variable]:
    """Every FilterExpression or Variable held in a node's attributes."""
    items = values.values() if isinstance(values, dict) else values
    for value in items:
        if isinstance(value, FilterExpression | Variable):
            yield value
        elif isinstance(value, list | tuple | dict) and depth < 2:
            yield from _expressions(value, depth + 1)


def _django_node(node: Node) -> bool:
    """A node of Django's own tags, which read only the expressions they hold."""
    return type(node).__module__.startswith("django.")


def _reads_nothing(node: Node) -> bool:
    # Built-ins that only produce output or bind a local name.
    return isinstance(
        node,
        dt.NowNode
        | i18n.GetAvailableLanguagesNode
        | i18n.GetCurrentLanguageNode
        | i18n.GetCurrentLanguageBidiNode
        | static.PrefixNode
        | tz.GetCurrentTimezoneNode,
    )


def _line(node: Node) -> int | None:
    token = getattr(node, "token", None)
    return getattr(token, "lineno", None)


def _tag_name(node: Node) -> str:
    token = getattr(node, "token", None)
    contents = getattr(token, "contents", "") or ""
    return contents.split(" ", 1)[0] or type(node).__name__


def _name(template: Template) -> str:
    return str(template.origin.template_name or template.origin.name)
