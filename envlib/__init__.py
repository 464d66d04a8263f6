"""ARES Reward Lab's library: the ARES EA beamline on Cheetah, its Gymnasium environment,
rewards, training, evaluation and jobs. No Streamlit in here."""

import gymnasium

ENV_ID = "AresEA-v0"

if ENV_ID not in gymnasium.registry:
    # Registered once per process; the env enforces its own time limit.
    gymnasium.register(id=ENV_ID, entry_point="envlib.env:AresEAEnv", max_episode_steps=None)
