"""tomochunk.preprocess"""
