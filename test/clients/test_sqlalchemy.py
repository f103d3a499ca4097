#!/usr/bin/python3
"""The training API from SQLAlchemy (1.4, psycopg2), as an ordinary role: function calls with
named arguments, and the tables mapped as ORM classes. Run by test/clients/run.sh.

Flow: a dataset through create_dataset/create_class/add_image and a second one through the
mapped classes, with generated PNG images; a training through create_training and a second one
by adding a Training object; both awaited by LISTEN on the worker's channel (no polling); read,
listed, recognized with, deleted; another role's dataset is never reachable.
"""
import json
import os
import random
import select
import struct
import sys
import time
import uuid
import zlib

import psycopg2
import psycopg2.extensions
from sqlalchemy import (ARRAY, Boolean, Column, FetchedValue, Float, ForeignKey, Integer,
                        LargeBinary, String, Text, create_engine, func, select as sa_select, text)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP, UUID
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, declarative_base, relationship

ROLE = "training_client_py"
DB = os.environ.get("TRAINING_CLIENTS_DB", "training_clients")
TIMEOUT = float(os.environ.get("TRAINING_CLIENTS_TIMEOUT", "120"))
OTHER_DATASET = os.environ["TRAINING_OTHER_DATASET_ID"]
STATE_FILE = os.environ.get("TRAINING_CLIENTS_STATE")
CHANNEL = "training_state"          # the worker's NOTIFY channel (README, "Background worker")

# Keys of the seed's Training JSON example.
TRAINING_KEYS = {"id", "type", "state", "progress", "duration", "error", "time_created",
                 "time_started", "time_completed", "source_dataset", "output_model_name",
                 "output_model", "config", "output_model_description", "output_model_changelog"}

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def sqlstate(exc):
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "pgcode", None)


# --- generated images -------------------------------------------------------------------

def png_grey(width, height, pixels):
    """Encode 8-bit grey pixels (bytes, row-major) as PNG."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xffffffff)
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def pattern(kind, rnd, size=64):
    """A class is a texture with its own grey levels: stripes across, stripes down, checks."""
    levels = [(220, 40), (160, 90), (250, 10)][kind]
    shift = rnd.randrange(8)
    px = bytearray()
    for y in range(size):
        for x in range(size):
            on = [((y + shift) // 4) % 2, ((x + shift) // 4) % 2,
                  (((x + shift) // 8) + ((y + shift) // 8)) % 2][kind]
            v = levels[0] if on else levels[1]
            px.append(max(0, min(255, v + rnd.randint(-12, 12))))
    return png_grey(size, size, bytes(px))


LABELS = ["tower", "bridge", "church"]

# --- the tables, mapped ------------------------------------------------------------------

Base = declarative_base()


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = {"schema": "training"}
    __mapper_args__ = {"eager_defaults": True}
    id = Column(UUID(as_uuid=True), primary_key=True, server_default=FetchedValue())
    owner = Column(String, server_default=FetchedValue())
    name = Column(Text, nullable=False)
    type = Column(Text, nullable=False)
    description = Column(Text, server_default=FetchedValue())
    time_created = Column(TIMESTAMP(timezone=True), server_default=FetchedValue())
    classes = relationship("Class", back_populates="dataset", passive_deletes=True)


class Class(Base):
    __tablename__ = "classes"
    __table_args__ = {"schema": "training"}
    __mapper_args__ = {"eager_defaults": True}
    id = Column(UUID(as_uuid=True), primary_key=True, server_default=FetchedValue())
    owner = Column(String, server_default=FetchedValue())
    dataset_id = Column(UUID(as_uuid=True), ForeignKey("training.datasets.id"), nullable=False)
    reference = Column(Text, server_default=FetchedValue())
    label = Column(Text, nullable=False)
    active = Column(Boolean, server_default=FetchedValue())
    dataset = relationship("Dataset", back_populates="classes")
    images = relationship("Image", back_populates="klass", passive_deletes=True)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = {"schema": "training"}
    __mapper_args__ = {"eager_defaults": True}
    id = Column(UUID(as_uuid=True), primary_key=True, server_default=FetchedValue())
    owner = Column(String, server_default=FetchedValue())
    class_id = Column(UUID(as_uuid=True), ForeignKey("training.classes.id"), nullable=False)
    data = Column(LargeBinary, nullable=False)
    format = Column(Text, server_default=FetchedValue())
    width = Column(Integer, server_default=FetchedValue())
    height = Column(Integer, server_default=FetchedValue())
    face_box = Column(ARRAY(Integer))
    klass = relationship("Class", back_populates="images")


class Model(Base):
    __tablename__ = "models"
    __table_args__ = {"schema": "training"}
    id = Column(UUID(as_uuid=True), primary_key=True)
    owner = Column(String)
    name = Column(Text)
    type = Column(Text)


class Training(Base):
    __tablename__ = "trainings"
    __table_args__ = {"schema": "training"}
    __mapper_args__ = {"eager_defaults": True}
    id = Column(UUID(as_uuid=True), primary_key=True, server_default=FetchedValue())
    owner = Column(String, server_default=FetchedValue())
    source_dataset_id = Column(UUID(as_uuid=True), ForeignKey("training.datasets.id"))
    output_model_name = Column(Text, nullable=False)
    config = Column(JSONB, server_default=FetchedValue())
    type = Column(Text, server_default=FetchedValue())
    state = Column(Text, server_default=FetchedValue())
    progress = Column(Float, server_default=FetchedValue())
    error = Column(Text, server_default=FetchedValue())
    output_model_id = Column(UUID(as_uuid=True), ForeignKey("training.models.id"),
                             server_default=FetchedValue())
    output_model_version = Column(Integer, server_default=FetchedValue())
    source_dataset = relationship("Dataset")
    output_model = relationship("Model")


# --- waiting without polling --------------------------------------------------------------

class Listener:
    """A dedicated autocommit connection LISTENing on the worker's channel."""

    def __init__(self, engine):
        self.raw = engine.raw_connection()
        self.conn = self.raw.connection            # the psycopg2 connection
        self.conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        self.seen = []                             # payloads that named one of our trainings
        with self.conn.cursor() as cur:
            cur.execute("LISTEN " + CHANNEL)

    def wait(self, ids, timeout):
        """Block until every training in ids is completed or failed. The states are read once
        after LISTEN (nothing can be missed) and again only when a notification arrives."""
        ids = [str(i) for i in ids]
        deadline = time.monotonic() + timeout
        while True:
            with self.conn.cursor() as cur:
                cur.execute("SELECT id::text, state FROM training.trainings WHERE id::text = ANY(%s)",
                            (ids,))
                states = dict(cur.fetchall())
            pending = [i for i in ids if states.get(i) not in ("completed", "failed")]
            if not pending:
                return states
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no completion within %.0f s; states: %s" % (timeout, states))
            readable, _, _ = select.select([self.conn], [], [], left)
            if readable:
                self.conn.poll()
                while self.conn.notifies:
                    n = self.conn.notifies.pop(0)
                    if any(i in n.payload for i in ids):
                        self.seen.append(n.payload)

    def close(self):
        self.raw.close()


# --- the test -----------------------------------------------------------------------------

def main():
    host = os.environ.get("PGHOST", "/tmp")
    port = os.environ.get("PGPORT", "5432")
    engine = create_engine(f"postgresql+psycopg2://{ROLE}@/{DB}?host={host}&port={port}", future=True)
    rnd = random.Random(7)

    with engine.connect() as c:
        check(c.execute(text("SELECT current_user")).scalar_one() == ROLE, "connected as " + ROLE)

    # 1. A dataset through the functions, with named arguments as DESIGN.md names them.
    with engine.begin() as c:
        ds1 = c.execute(text("SELECT training.create_dataset(name => :name, type => :type, "
                             "description => :d)"),
                        {"name": "py places", "type": "landmark", "d": "made by SQLAlchemy"}).scalar_one()
        class_ids = []
        for label in LABELS:
            cls = c.execute(text("SELECT training.create_class(dataset_id => :ds, label => :label, "
                                 "reference => :ref)"),
                            {"ds": ds1["id"], "label": label, "ref": label}).scalar_one()
            class_ids.append(cls["id"])
            for _ in range(8):
                img = c.execute(text("SELECT training.add_image(class_id => :c, data => :data)"),
                                {"c": cls["id"], "data": pattern(LABELS.index(label), rnd)}).scalar_one()
        check(img.get("class_id") == cls["id"], "add_image returns the Image object")
        got = c.execute(text("SELECT training.get_dataset(:id)"), {"id": ds1["id"]}).scalar_one()
    check(got["number_of_classes"] == 3 and got["number_of_images"] == 24,
          "get_dataset counts 3 classes and 24 images")

    # 2. A dataset through the mapped tables.
    with Session(engine, future=True) as s:
        ds2 = Dataset(name="py orm places", type="landmark")
        for k, label in enumerate(LABELS):
            cls = Class(label=label, reference=label, dataset=ds2)
            for _ in range(8):
                cls.images.append(Image(data=pattern(k, rnd)))
        s.add(ds2)
        s.commit()
        ds2_id = ds2.id
        check(ds2.owner == ROLE, "the ORM insert's owner is filled from current_user")
        first = s.execute(sa_select(Image).join(Class).where(Class.dataset_id == ds2_id).limit(1)).scalar_one()
        check(first.format == "png" and first.width == 64 and first.height == 64,
              "the image trigger filled format/width/height: %s %sx%s" % (first.format, first.width, first.height))

    listener = Listener(engine)
    try:
        # 3. A training through the function and another by adding a Training object.
        with engine.begin() as c:
            t1 = c.execute(text("SELECT training.create_training(source_dataset_id => :ds, "
                                "output_model_name => :m, output_model_changelog => :cl, config => :cfg)"),
                           {"ds": ds1["id"], "m": "py model", "cl": "first", "cfg": "{}"}).scalar_one()
        check(set(t1) == TRAINING_KEYS, "create_training returns the seed's keys")
        check(t1["state"] == "waiting" and t1["output_model"] is None, "a new training is waiting")
        with Session(engine, future=True) as s:
            t2 = Training(source_dataset_id=ds2_id, output_model_name="py orm model")
            s.add(t2)
            s.flush()       # INSERT ... RETURNING fills the server-side columns (eager_defaults)
            got = (t2.type, t2.state, t2.owner)
            t2_id = t2.id
            s.commit()      # the worker may pick the training up from here on
            check(got == ("landmark", "waiting", ROLE),
                  "the mapped insert got type, state and owner from the server: %s" % (got,))

        # 4. Wait for both, by LISTEN.
        t0 = time.monotonic()
        states = listener.wait([t1["id"], t2_id], TIMEOUT)
        print("     both trainings finished in %.1f s: %s" % (time.monotonic() - t0, states))
        check(all(v == "completed" for v in states.values()), "both trainings completed")
        check(len(listener.seen) >= 1, "notifications on %s named our trainings (%d seen)"
              % (CHANNEL, len(listener.seen)))
    finally:
        listener.close()

    # 5. Read them back: function and ORM.
    with engine.begin() as c:
        g1 = c.execute(text("SELECT training.get_training(:id)"), {"id": t1["id"]}).scalar_one()
    check(set(g1) == TRAINING_KEYS, "get_training has exactly the seed's keys")
    check(g1["progress"] == 1.0 and g1["error"] == "" and g1["time_completed"] is not None,
          "a completed training has progress 1.0, no error and a completion time")
    check(isinstance(g1["output_model"], dict), "output_model is set once a version exists")
    check(g1["source_dataset"]["id"] == ds1["id"], "source_dataset is the Dataset object")
    with Session(engine, future=True) as s:
        t2 = s.get(Training, t2_id)
        check(t2.state == "completed" and t2.progress == 1.0, "the mapped Training reads completed")
        check(t2.output_model is not None and t2.output_model.name == "py orm model"
              and t2.output_model.owner == ROLE,
              "the worker created the model with the training's owner")
        check(t2.source_dataset.name == "py orm places", "relationship to the source dataset")

    # 6. List: only this role's trainings, through the function and the table.
    with engine.begin() as c:
        page = c.execute(text('SELECT training.list_trainings("limit" => :l, "offset" => 0)'),
                         {"l": 10}).scalar_one()
        check({"total", "offset", "limit", "next", "prev", "data"} <= set(page),
              "list_trainings returns the list envelope")
        check(page["total"] == 2 and {d["id"] for d in page["data"]} == {t1["id"], str(t2_id)},
              "list_trainings lists exactly this role's two trainings")
        done = c.execute(text("SELECT training.list_trainings(state => 'completed')")).scalar_one()
        check(done["total"] == 2, "list_trainings filters by state")
    with Session(engine, future=True) as s:
        owners = s.execute(sa_select(Training.owner, func.count()).group_by(Training.owner)).all()
        check(owners == [(ROLE, 2)], "the mapped table shows only this role's rows: %s" % owners)

    # 7. Recognize with the model: by name and by its uuid.
    probe = pattern(1, random.Random(99))
    with engine.begin() as c:
        r = c.execute(text("SELECT training.recognize(model => :m, image => :img, max_distance => 2)"),
                      {"m": "py model", "img": probe}).scalar_one()
        check(r.get("model") == "py model==1", "recognize names the model version: %s" % r.get("model"))
        labels = [d.get("label") for d in r.get("detections", [])]
        check(labels[:1] == ["bridge"], "recognize finds the class of a new image: %s" % labels)
        r2 = c.execute(text("SELECT training.recognize(:m, :img)"),
                       {"m": g1["output_model"]["id"], "img": probe}).scalar_one()
        check(r2.get("model") == "py model==1", "recognize by model uuid")

    # 8. The other role's dataset: not found through functions, invisible through the ORM.
    for sql, args in [("SELECT training.get_dataset(:id)", {"id": OTHER_DATASET}),
                      ("SELECT training.update_dataset(id => :id, name => 'mine')", {"id": OTHER_DATASET}),
                      ("SELECT training.delete_dataset(:id)", {"id": OTHER_DATASET}),
                      ("SELECT training.list_classes(dataset_id => :id)", {"id": OTHER_DATASET}),
                      ("SELECT training.create_class(dataset_id => :id, label => 'x')", {"id": OTHER_DATASET}),
                      ("SELECT training.create_training(source_dataset_id => :id, output_model_name => 'x')",
                       {"id": OTHER_DATASET})]:
        try:
            with engine.begin() as c:
                c.execute(text(sql), args)
            check(False, "P0002 for another role's dataset: " + sql)
        except DBAPIError as e:
            check(sqlstate(e) == "P0002", "P0002 for another role's dataset: %s (got %s)" % (sql, sqlstate(e)))
    with Session(engine, future=True) as s:
        check(s.get(Dataset, uuid.UUID(OTHER_DATASET)) is None, "the ORM does not see the other role's dataset")
        n = s.query(Dataset).filter(Dataset.id == uuid.UUID(OTHER_DATASET)).update({"name": "mine"})
        s.commit()
        check(n == 0, "an ORM update of the other role's dataset changes no row")
        try:
            s.add(Training(source_dataset_id=uuid.UUID(OTHER_DATASET), output_model_name="stolen"))
            s.commit()
            check(False, "an ORM training on the other role's dataset is refused")
        except DBAPIError as e:
            s.rollback()
            check(sqlstate(e) in ("P0002", "42501"),
                  "an ORM training on the other role's dataset is refused (%s)" % sqlstate(e))

    # Leave the first dataset, training and model for the Node client's cross-role checks.
    if STATE_FILE:
        with open(STATE_FILE, "w") as f:
            json.dump({"dataset_id": ds1["id"], "training_id": t1["id"], "class_id": class_ids[0],
                       "model_id": g1["output_model"]["id"], "model_name": "py model"}, f)

    # 9. Delete: through the functions and through the ORM.
    with engine.begin() as c:
        c.execute(text("SELECT training.delete_training(:id)"), {"id": str(t2_id)})
        c.execute(text("SELECT training.delete_model(:m)"), {"m": "py orm model"})
    for sql, args in [("SELECT training.get_training(:id)", {"id": str(t2_id)}),
                      ("SELECT training.get_model(:m)", {"m": "py orm model"})]:
        try:
            with engine.begin() as c:
                c.execute(text(sql), args)
            check(False, "deleted, then P0002: " + sql)
        except DBAPIError as e:
            check(sqlstate(e) == "P0002", "deleted, then P0002: %s (got %s)" % (sql, sqlstate(e)))
    with Session(engine, future=True) as s:
        s.delete(s.get(Dataset, ds2_id))
        s.commit()
        check(s.get(Dataset, ds2_id) is None, "an ORM delete removes the dataset")
        left = s.execute(sa_select(func.count()).select_from(Class).where(Class.dataset_id == ds2_id)).scalar_one()
        check(left == 0, "its classes went with it")

    print("python client: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
