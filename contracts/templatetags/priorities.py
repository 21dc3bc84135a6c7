"""{{ code|priority_name }}: a priority as its SLA calls it (contracts.choices.priority_name)."""

from django import template

from contracts.choices import priority_name

register = template.Library()
register.filter("priority_name", priority_name)
