"""The Netaxis Fusion DRaaS API family (spec 004, vendor-notes part 2). Never imports api.connecttoteams."""

from fastapi import APIRouter

PREFIX = "/api/v01/"
ROUTERS: list[APIRouter] = []
