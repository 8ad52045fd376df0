"""``latentdirs train-gan``: declared next to the training code (latentdirs.gan.train)."""


def add_parser(sub) -> None:
    from ..gan.train import add_train_gan_parser
    add_train_gan_parser(sub)
