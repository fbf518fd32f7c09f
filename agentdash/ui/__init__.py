"""The NiceGUI dashboard on the client port."""
