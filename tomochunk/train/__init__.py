"""tomochunk.train"""
