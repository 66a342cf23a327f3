"""Custom tags for the template-analysis corpus."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.base import FilterExpression, Parser, Token, Variable

register = template.Library()


@register.simple_tag
def greet(name: str, prefix: str = "") -> str:
    return f"{prefix} {name}"


@register.simple_tag
def version() -> str:
    return "1.0"


@register.simple_tag(takes_context=True)
def whoami(context: Any) -> str:
    return str(context.get("user", ""))


@register.inclusion_tag("live/_form.html")
def title_form(title: str) -> dict[str, Any]:
    return {"title": title}


@register.inclusion_tag("analysis/_part.html")
def card(item: Any) -> dict[str, Any]:
    return {"item": item}


class OpaqueNode(template.Node):
    """Reads the context in ways no analysis can see."""

    def render(self, context: Any) -> str:
        return str(context.get("secret_of_the_day", ""))


@register.tag
def opaque(parser: Parser, token: Token) -> OpaqueNode:
    return OpaqueNode()


class ShowVarNode(template.Node):
    def __init__(self, variable: Variable) -> None:
        self.variable = variable

    def render(self, context: Any) -> str:
        return str(self.variable.resolve(context))


@register.tag
def show_var(parser: Parser, token: Token) -> ShowVarNode:
    _, name = token.split_contents()
    return ShowVarNode(Variable(name))


@register.simple_block_tag
def wrap(content: str) -> str:
    return f"<div>{content}</div>"


class AdminOnlyNode(template.Node):
    """A container that reads the context itself: nothing on the node says what."""

    child_nodelists = ("nodelist",)

    def __init__(self, nodelist: template.NodeList) -> None:
        self.nodelist = nodelist

    def render(self, context: Any) -> str:
        return self.nodelist.render(context) if context.get("user_is_admin") else ""


@register.tag
def admin_only(parser: Parser, token: Token) -> AdminOnlyNode:
    nodelist = parser.parse(("endadmin_only",))
    parser.delete_first_token()
    return AdminOnlyNode(nodelist)


class GreetViewerNode(template.Node):
    """Holds an expression, and also reads context["user"] as it renders: the
    analysis cannot know, so the block reads everything (rendered per viewer)."""

    def __init__(self, greeting: Variable) -> None:
        self.greeting = greeting

    def render(self, context: Any) -> str:
        user = context.get("user")
        return f"{self.greeting.resolve(context)} {getattr(user, 'username', '')}"


@register.tag
def greet_viewer(parser: Parser, token: Token) -> GreetViewerNode:
    _, greeting = token.split_contents()
    return GreetViewerNode(Variable(greeting))


class ElementNode(template.Node):
    """Like django-allauth's ``{% element h1 %}``: the element's name is parsed as an
    expression but used as text, and the whole context goes to its template."""

    def __init__(self, nodelist: template.NodeList, element: FilterExpression) -> None:
        self.nodelist = nodelist
        self.element = element

    def render(self, context: Any) -> str:
        inner = self.nodelist.render(context)
        return f"<{self.element.token}>{inner}</{self.element.token}>"


@register.tag
def element(parser: Parser, token: Token) -> ElementNode:
    _, name = token.split_contents()
    nodelist = parser.parse(("endelement",))
    parser.delete_first_token()
    return ElementNode(nodelist, FilterExpression(name, parser))


class SetVarNode(template.Node):
    """Like django-allauth's ``{% setvar name %}...{% endsetvar %}``."""

    def __init__(self, nodelist: template.NodeList, var: str) -> None:
        self.nodelist = nodelist
        self.var = var

    def render(self, context: Any) -> str:
        context[self.var] = self.nodelist.render(context).strip()
        return ""


@register.tag
def setvar(parser: Parser, token: Token) -> SetVarNode:
    _, name = token.split_contents()
    nodelist = parser.parse(("endsetvar",))
    parser.delete_first_token()
    return SetVarNode(nodelist, name)
