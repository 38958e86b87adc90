"""Reading rooms for everything that waits on them (approvals, message triggers, sensors): one
read of a room (:mod:`.read`), the read budget per connection (:mod:`.budget`) and the shared
readers of a triggerer's event loop (:mod:`.readers`). No Airflow in here."""
