"""Rules from the settings: who may decide a request (policy) and where it goes (routing). Pure."""
