from avss.models.base import EncoderMaskerDecoder, Separator
from avss.models.convtasnet import ConvTasNet
from avss.models.av_convtasnet import AVConvTasNet

__all__ = ["Separator", "EncoderMaskerDecoder", "ConvTasNet", "AVConvTasNet"]
