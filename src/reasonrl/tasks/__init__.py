"""Task generators and their verifiers (synthetic reasoning DAGs, ...). Kept import-light."""
