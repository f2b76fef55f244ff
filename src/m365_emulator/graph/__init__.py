"""Microsoft Graph v1.0 subset: directory, licences, groups and Teams voice administration."""
