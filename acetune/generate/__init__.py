"""Generation: text to audio with the model's own samplers, with any mix of adapters.

`Studio` loads a checkpoint bundle once; `Track` says what to render; `render` holds the three
steps (condition, sample, decode) that the CLI, the demo and training auditions all share.
"""

from acetune.generate.render import decode_audio, encode_track, render_latents
from acetune.generate.studio import Studio
from acetune.generate.takes import refuse_existing, safe_stem, take_paths, write_takes
from acetune.generate.tracks import Track

__all__ = ["Studio", "Track", "decode_audio", "encode_track", "refuse_existing", "render_latents", "safe_stem",
           "take_paths", "write_takes"]
