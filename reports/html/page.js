document.body.dataset.status='ok';
