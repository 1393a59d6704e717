"""One module per page of the web app; each builds its controls inside the app's Blocks and wires its events."""
