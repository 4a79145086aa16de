"""The arm: URDF description, MuJoCo model and simulator, the reaching task and its
gymnasium environment."""
