from celery import shared_task

from orgs.tasks import enqueue_now

from . import sources, webhooks


@shared_task
def deliver_webhook(delivery_id):
    """Post one webhook delivery, if no one else has (the claim decides)."""
    return webhooks.deliver(delivery_id)


@shared_task
def pull_source(source_id):
    """Fetch one data source's document and check its value in."""
    check_in = sources.pull(source_id)
    return check_in.pk if check_in else None


@shared_task
def sweep_integrations():
    """Every minute: data sources due for a pull are claimed and pulled; webhook deliveries due
    for a retry, or whose sender died, are sent again; settled deliveries older than a month
    are deleted (a batch at a time)."""
    due = sources.claim_due()
    for source_id in due:
        enqueue_now(pull_source, source_id)
    deliveries = webhooks.sweep()
    for delivery_id in deliveries:
        enqueue_now(deliver_webhook, delivery_id)
    webhooks.prune()
    return len(due) + len(deliveries)
