"""The Textual app: `app.py`, `screens/`, `widgets/`, `messages.py` and one `.tcss`. Widgets
display and post messages; screens call the layers below. Only this package imports `textual`."""
