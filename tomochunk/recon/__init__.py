"""tomochunk.recon"""
