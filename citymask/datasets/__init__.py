from .transforms import LoadCityscapesImage

__all__ = ['LoadCityscapesImage']
