import streamlit as st

st.title("rewards")
st.info("This page is being built.")
