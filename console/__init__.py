"""The dispatcher console (Textual): a live alert queue, the units, each incident's detail, and keys that
send acknowledgements and resolutions to the bridge. ``console.app.run`` starts it."""
