"""Choice lists of model rows read with one plain query.

Django's ``ModelChoiceIterator`` reads a ``ModelChoiceField``'s rows through
``QuerySet.iterator()``, which on PostgreSQL opens a server-side cursor: three round trips
(declare, fetch, close) for a list of a few rows, for every ``<select>``, radio list or checkbox
list a page renders. ``OneQueryChoices`` reads the same rows, in the same order, with one plain
``SELECT``; the rows stay on the field's queryset for the rest of the request, so a widget
rendered twice asks once.

It is installed for every ``ModelChoiceField`` (and ``ModelMultipleChoiceField``, and the fields
Django makes for a model form's foreign keys) by ``OrgsConfig.ready``: the class attribute
``iterator`` is the hook Django documents for this. Only how the choices are read changes;
what a field accepts is still checked by its queryset, one ``get``/``filter`` per submitted
value, as before.

Not the setting ``DISABLE_SERVER_SIDE_CURSORS``: it would turn off the server-side cursors of
every ``iterator()`` too, and the exports, digests and history pages read their tens of
thousands of rows through one so that a process never holds them all. The long lists of a
form are search pickers (``orgs.pickers``), which never list their rows; a ``<select>`` lists
a bounded set (a workflow's own teams, a team's members, a cycle's milestones).
"""

from django.forms import ModelChoiceField
from django.forms.models import ModelChoiceIterator


class OneQueryChoices(ModelChoiceIterator):
    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:
            yield self.choice(obj)


def install():
    ModelChoiceField.iterator = OneQueryChoices
