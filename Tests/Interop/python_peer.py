"""The Python side of the cross-implementation messaging test.

Runs Python Edda 0.16.2 (`pip install edda-framework==0.16.2 asyncpg`) against the database the
Swift test shares with it: <db> is a SQLite file's path or a database URL
(`postgresql+asyncpg://…`).

    python_peer.py <db> publish <channel> <json-object>      publish from outside any workflow
    python_peer.py <db> start-receiver <channel>             start a Python workflow that subscribes
                                                             to <channel> and waits for one message;
                                                             prints its instance ID and status
    python_peer.py <db> resume <instance-id>                 run until that instance completes;
                                                             prints its output_data as JSON
    python_peer.py <db> emit-event <type>                    run a Python workflow whose activity writes
                                                             an event to the transactional outbox;
                                                             prints its instance's status and output
    python_peer.py <db> cancel <instance-id>                 cancel_workflow, as a Python app or its
                                                             viewer would; prints true or false
    python_peer.py <db> cloudevent <type> <json> <traceparent>
                                                             handle a CloudEvent with that traceparent as
                                                             the Python app's HTTP endpoint would
"""

import asyncio
import json
import sys

from edda import EddaApp, WorkflowContext, activity, workflow
from edda.channels import publish, receive, subscribe
from edda.outbox.transactional import send_event_transactional


@workflow
async def python_receiver(ctx: WorkflowContext, channel: str) -> dict:
    await subscribe(ctx, channel, mode="broadcast")
    message = await receive(ctx, channel)
    return {"data": message.data, "metadata": message.metadata, "id": message.id}


@activity
async def emit(ctx: WorkflowContext, event_type: str) -> str:
    return await send_event_transactional(ctx, event_type, "/python-peer", {"from": "python"})


@workflow
async def python_emitter(ctx: WorkflowContext, event_type: str) -> str:
    return await emit(ctx, event_type)


async def initialized(db_url: str) -> EddaApp:
    """The app, initialised. On MySQL, Python Edda 0.16.2 skips its migration when the lock
    'edda_migration' is held (GET_LOCK with no wait) and then fails on the missing tables; that lock
    is server-wide, so another Python worker migrating any other database on the server (the tests
    create many at once) makes it skip. (This library takes a lock per database.) Trying again is what a restarted worker would do."""
    for attempt in range(60):
        app = EddaApp(service_name="python-peer", db_url=db_url)
        try:
            await app.initialize()
            return app
        except Exception as error:  # noqa: BLE001 - only the missing-schema case is retried
            if "doesn't exist" not in str(error) or attempt == 59:
                raise
            try:
                await app.shutdown()
            except Exception:  # noqa: BLE001
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("unreachable")


async def finished(app: EddaApp, instance_id: str) -> dict:
    """The instance once completed or failed (Python's own workers run it)."""
    # Generous for a loaded machine: the test fails by the status it reports, not by time.
    deadline = asyncio.get_running_loop().time() + 180
    while asyncio.get_running_loop().time() < deadline:
        instance = await app.storage.get_instance(instance_id)
        if instance["status"] in ("completed", "failed"):
            return instance
        await asyncio.sleep(0.05)
    raise SystemExit(f"instance {instance_id} did not complete: {instance['status']}")


async def main() -> None:
    db, command = sys.argv[1], sys.argv[2]
    db_url = db if "://" in db else f"sqlite:///{db}"
    app = await initialized(db_url)
    try:
        if command == "publish":
            message_id = await publish(app.storage, sys.argv[3], json.loads(sys.argv[4]))
            print(message_id)
        elif command == "start-receiver":
            instance_id = await python_receiver.start(channel=sys.argv[3])
            instance = await app.storage.get_instance(instance_id)
            print(json.dumps({"instance_id": instance_id, "status": instance["status"]}))
        elif command == "resume":
            instance = await finished(app, sys.argv[3])
            print(json.dumps({"status": instance["status"], "output": instance["output_data"]}))
        elif command == "emit-event":
            lock_failure = "Failed to acquire lock for instance "
            try:
                instance_id = await python_emitter.start(event_type=sys.argv[3])
            except RuntimeError as error:
                # Python Edda 0.16.2 creates the instance, then locks it in another transaction; its
                # own background resumption can take it in between (seen on a loaded machine), and
                # then runs it. Wait for that run.
                if not str(error).startswith(lock_failure):
                    raise
                instance_id = str(error)[len(lock_failure):]
            instance = await finished(app, instance_id)
            print(json.dumps({"status": instance["status"], "output": instance["output_data"]}))
        elif command == "cloudevent":
            from cloudevents.http import CloudEvent

            event = CloudEvent(
                {"type": sys.argv[3], "source": "/python-peer", "traceparent": sys.argv[5]}, json.loads(sys.argv[4])
            )
            await app.handle_cloudevent(event, wait=True)
            print(event["id"])
        elif command == "cancel":
            cancelled = await app.replay_engine.cancel_workflow(sys.argv[3], cancelled_by="python-peer")
            print(json.dumps(cancelled))
        else:
            raise SystemExit(f"unknown command {command}")
    finally:
        await app.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
