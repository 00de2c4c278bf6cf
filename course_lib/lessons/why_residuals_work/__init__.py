"""Notebook 05, why residual networks work: the lesion study and paths of different lengths (``lesion``), loss
landscapes (``landscape``), and the profile-sized experiments that train and load the twins (``experiments``)."""
