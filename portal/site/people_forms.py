"""The forms of the People pages and of accepting an invitation."""

from django import forms

from contracts.models import Contract
from portal.core.ids import IdMultipleChoiceField
from portal.core.roles import CustomerRole
from portal.core.timezones import TimezoneInput
from portal.core.validators import validate_timezone

ROLE_CHOICES = [(CustomerRole.MEMBER, "Member"), (CustomerRole.ADMIN, "Admin (manages people and contacts)")]


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES, initial=CustomerRole.MEMBER)
    support_contracts = IdMultipleChoiceField(
        label="May open tickets on",
        queryset=Contract.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The contracts they will be a designated support contact of (you can change it later).",
        error_messages={
            "invalid_choice": "Choose among your organisation's contracts.",
            "invalid_pk_value": "Choose among your organisation's contracts.",
        },
    )

    def __init__(self, *args, organisation_id: int, **kwargs):
        kwargs.setdefault("auto_id", "invite_%s")
        super().__init__(*args, **kwargs)
        contracts = Contract.objects.filter(organisation_id=organisation_id).order_by("name", "pk")
        self.fields["support_contracts"].queryset = contracts
        self.fields["support_contracts"].initial = [c.pk for c in contracts]


class RoleForm(forms.Form):
    role = forms.ChoiceField(
        choices=ROLE_CHOICES, error_messages={"invalid_choice": "Choose admin or member.", "required": "Choose a role."}
    )


class AcceptForm(forms.Form):
    """The invitee's name and password (checked by the password validators in the service)."""

    name = forms.CharField(label="Your name", max_length=150)
    password1 = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters, not a common password, not like your name or address.",
    )  # fmt: skip
    password2 = forms.CharField(
        label="Password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name or any(ord(ch) < 32 for ch in name):
            raise forms.ValidationError("Enter your name on one line.")
        return name

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", "The two passwords differ.")
        return data


PEOPLE_ONLY = {
    "invalid_choice": "Choose among your organisation's people.",
    "invalid_pk_value": "Choose among your organisation's people.",
}


class ContactsForm(forms.Form):
    """A contract's designations among the organisation's active people."""

    support = IdMultipleChoiceField(queryset=None, required=False, error_messages=PEOPLE_ONLY)
    notified = IdMultipleChoiceField(queryset=None, required=False, error_messages=PEOPLE_ONLY)

    def __init__(self, *args, people, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["support"].queryset = people
        self.fields["notified"].queryset = people


class ProfileForm(forms.Form):
    """One's own contact details (Klart: "maintain up-to-date contact information")."""

    name = forms.CharField(label="Name", max_length=150)
    phone = forms.CharField(
        label="Phone", max_length=40, required=False, help_text="Where we can call you, e.g. +254 700 000 000."
    )
    timezone = forms.CharField(
        label="Your timezone", max_length=64, required=False, validators=[validate_timezone], widget=TimezoneInput,
        help_text="An IANA timezone such as Europe/Berlin (type your city): times are then shown in yours beside the contract's.",
    )  # fmt: skip

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name or any(ord(ch) < 32 for ch in name):
            raise forms.ValidationError("Enter your name on one line.")
        return name

    def clean_phone(self):
        phone = self.cleaned_data["phone"].strip()
        if phone and not all(ch.isdigit() or ch in "+-() ./x" for ch in phone):
            raise forms.ValidationError("Use digits, spaces and + - ( ) only.")
        return phone


class OrganisationForm(forms.Form):
    name = forms.CharField(label="Organisation name", max_length=200)
    address = forms.CharField(
        label="Address", required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )
    phone = forms.CharField(label="Phone", max_length=40, required=False)
    clean_phone = ProfileForm.clean_phone
