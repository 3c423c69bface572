"""The browser's side of the service: offline API docs and the dashboard (see ``site``)."""
