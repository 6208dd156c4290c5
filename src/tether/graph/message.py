"""``tether.graph.message``, as ``langgraph.graph.message``: the chat-history state and its
reducer."""

from tether._messages import REMOVE_ALL_MESSAGES, MessagesState, add_messages

__all__ = ["REMOVE_ALL_MESSAGES", "MessagesState", "add_messages"]
