"""Run the tap with `python -m tap_udemy_business`."""

from tap_udemy_business.tap import TapUdemyBusiness

TapUdemyBusiness.cli()
