from .loading import LoadCityscapesImage

__all__ = ['LoadCityscapesImage']
