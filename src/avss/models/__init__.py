from avss.models.band_split import BandSplitRNN
from avss.models.cascade import Cascade
from avss.models.base import EncoderMaskerDecoder, Separator
from avss.models.convtasnet import ConvTasNet
from avss.models.ensemble import Ensemble
from avss.models.av_convtasnet import AVConvTasNet
from avss.models.iianet import IIANet
from avss.models.limuse import LiMuSE
from avss.models.mossformer import MossFormer, MossFormer2
from avss.models.refined import Refined
from avss.models.rtfsnet import RTFSNet
from avss.models.sudormrf import SuDoRMRF
from avss.models.tf_gridlite import TFGridLite
from avss.models.tf_masknet import TFMaskNet

__all__ = ["Separator", "EncoderMaskerDecoder", "BandSplitRNN", "Cascade", "ConvTasNet", "AVConvTasNet", "IIANet", "LiMuSE", "MossFormer", "MossFormer2",
           "Refined", "RTFSNet", "SuDoRMRF", "TFGridLite", "TFMaskNet"]
