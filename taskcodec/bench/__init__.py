"""``taskcodec bench``: rate-accuracy curves and BD-rates against the codecs users would pick instead."""
