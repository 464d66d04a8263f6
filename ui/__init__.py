"""Streamlit UI pieces shared by the pages (the pages themselves stay thin)."""
