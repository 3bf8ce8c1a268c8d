"""What every domain's HTTP routes build on: authentication, request dependencies, paging."""
